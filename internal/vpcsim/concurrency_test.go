package vpcsim_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// TestConcurrentAssignNeverDuplicates runs 64 goroutines that assign and unassign addresses
// and prefixes on shared ENIs in a small subnet, so that they also run into exhaustion. No
// address may ever be held by two goroutines at once, nor appear twice in the final state.
func TestConcurrentAssignNeverDuplicates(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.0.0/23")
	var enis []string
	for i := 0; i < 16; i++ {
		enis = append(enis, *f.eni(t).NetworkInterfaceId)
	}
	var mu sync.Mutex
	held := map[string]string{} // address or prefix -> holder
	var dup []string
	take := func(who string, addrs ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range addrs {
			if other, ok := held[a]; ok {
				dup = append(dup, fmt.Sprintf("%s held by %s and %s", a, other, who))
			}
			held[a] = who
		}
	}
	drop := func(addrs ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range addrs {
			delete(held, a)
		}
	}
	const workers, rounds = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			eni := enis[w%len(enis)]
			who := fmt.Sprintf("worker %d", w)
			var mine, prefixes []string
			for r := 0; r < rounds; r++ {
				switch {
				case len(mine) > 0 && rng.IntN(3) == 0:
					n := 1 + rng.IntN(len(mine))
					drop(mine[:n]...)
					if _, err := f.c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: &eni, PrivateIpAddresses: mine[:n]}); err != nil {
						errs <- fmt.Errorf("%s unassign: %w", who, err)
						return
					}
					mine = mine[n:]
				case len(prefixes) > 0 && rng.IntN(4) == 0:
					for _, p := range prefixes {
						drop(expand(p)...)
					}
					if _, err := f.c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: &eni, Ipv4Prefixes: prefixes}); err != nil {
						errs <- fmt.Errorf("%s unassign prefixes: %w", who, err)
						return
					}
					prefixes = nil
				case rng.IntN(5) == 0:
					out, err := f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &eni, Ipv4PrefixCount: aws.Int32(1)})
					if code := apiCode(t, err); code != "" && code != "PrivateIpAddressLimitExceeded" && code != "InsufficientCidrBlocks" {
						errs <- fmt.Errorf("%s assign prefix: %w", who, err)
						return
					}
					if err == nil {
						p := *out.AssignedIpv4Prefixes[0].Ipv4Prefix
						prefixes = append(prefixes, p)
						take(who, expand(p)...)
					}
				default:
					out, err := f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &eni, SecondaryPrivateIpAddressCount: aws.Int32(int32(1 + rng.IntN(3)))})
					if code := apiCode(t, err); code != "" && code != "PrivateIpAddressLimitExceeded" && code != "InsufficientFreeAddressesInSubnet" {
						errs <- fmt.Errorf("%s assign: %w", who, err)
						return
					}
					if err == nil {
						for _, a := range out.AssignedPrivateIpAddresses {
							mine = append(mine, *a.PrivateIpAddress)
							take(who, *a.PrivateIpAddress)
						}
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(dup) > 0 {
		t.Fatalf("%d duplicates, e.g. %s", len(dup), dup[:min(8, len(dup))])
	}
	// The final state: every address and prefix on exactly one ENI.
	out := must[*ec2.DescribeNetworkInterfacesOutput](t)(f.c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{}))
	seen := map[string]bool{}
	for _, e := range out.NetworkInterfaces {
		for _, p := range e.PrivateIpAddresses {
			if seen[*p.PrivateIpAddress] {
				t.Fatalf("%s twice in the final state", *p.PrivateIpAddress)
			}
			seen[*p.PrivateIpAddress] = true
		}
		for _, p := range e.Ipv4Prefixes {
			for _, a := range expand(*p.Ipv4Prefix) {
				if seen[a] {
					t.Fatalf("%s (in %s) twice in the final state", a, *p.Ipv4Prefix)
				}
				seen[a] = true
			}
		}
	}
	if len(held) == 0 {
		t.Fatal("the workers ended holding nothing: the test did not exercise much")
	}
}

func expand(p string) []string {
	var base [4]int
	var bits int
	fmt.Sscanf(p, "%d.%d.%d.%d/%d", &base[0], &base[1], &base[2], &base[3], &bits)
	var out []string
	for i := 0; i < 16; i++ {
		out = append(out, fmt.Sprintf("%d.%d.%d.%d", base[0], base[1], base[2], base[3]+i))
	}
	return out
}
