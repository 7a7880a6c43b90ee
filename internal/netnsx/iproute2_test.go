package netnsx_test

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"golang.org/x/sys/unix"
)

// inPrivateMountNS is set in the copy of the test binary that TestIproute2Interop runs inside
// `unshare --mount --propagation private`.
const inPrivateMountNS = "VPCNET_NETNSX_PRIVATE_MNTNS"

// TestIproute2Interop runs `ip netns add/del` and netnsx in every order on a /run/netns that
// starts as a plain directory (the state the first `ip netns add` after boot finds), and checks
// that every namespace can be removed with no EBUSY and no mount left behind. It runs in a
// private mount namespace on a fresh tmpfs at /run, so the host's /run/netns is never touched
// and the test sees the same starting state whatever ran on the host before.
func TestIproute2Interop(t *testing.T) {
	testenv.RequireNetns(t)
	for _, bin := range []string{"ip", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed: %v", bin, err)
		}
	}
	if os.Getenv(inPrivateMountNS) == "" {
		cmd := exec.Command("unshare", "--mount", "--propagation", "private",
			os.Args[0], "-test.run=^TestIproute2Interop$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), inPrivateMountNS+"=1")
		out, err := cmd.CombinedOutput()
		t.Logf("inside a private mount namespace:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestIproute2Interop") {
			t.Fatalf("the test inside the private mount namespace failed: %v", err)
		}
		return
	}

	ip := func(t *testing.T, args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"netns"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip netns %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// freshRun hides /run behind a new tmpfs (in this private mount namespace only): /run/netns
	// does not exist and, once made, is a plain directory, not a mount point.
	freshRun := func(t *testing.T) {
		t.Helper()
		if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(t *testing.T, name string) {
		t.Helper()
		if _, err := os.Lstat(netnsx.Path(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Delete (%v)", netnsx.Path(name), err)
		}
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[4] == netnsx.Path(name) {
				t.Errorf("a mount of %s is left: %s", name, line)
			}
		}
	}
	mustDelete := func(t *testing.T, name string) {
		t.Helper()
		if err := netnsx.Delete(name); err != nil {
			t.Fatalf("Delete(%s): %v", name, err)
		}
		gone(t, name)
	}

	t.Run("netnsx first, then ip netns add", func(t *testing.T) {
		freshRun(t)
		ours, theirs := testenv.NSName("ours"), testenv.NSName("ip")
		h, err := netnsx.Create(ours)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		ip(t, "add", theirs)
		mustDelete(t, ours)
		ip(t, "exec", theirs, "true") // theirs is untouched
		ip(t, "del", theirs)
		gone(t, theirs)
	})

	t.Run("ip netns add first, then netnsx", func(t *testing.T) {
		freshRun(t)
		ours, theirs := testenv.NSName("ours"), testenv.NSName("ip")
		ip(t, "add", theirs)
		h, err := netnsx.Create(ours)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		ip(t, "exec", ours, "true") // iproute2 sees ours as a namespace
		mustDelete(t, ours)
		ip(t, "exec", theirs, "true")
		mustDelete(t, theirs) // netnsx removes what ip made
	})

	t.Run("ip netns del removes a netnsx namespace", func(t *testing.T) {
		freshRun(t)
		ours := testenv.NSName("ours")
		h, err := netnsx.Create(ours)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		ip(t, "del", ours)
		gone(t, ours)
		if err := netnsx.Delete(ours); err != nil {
			t.Errorf("Delete after ip netns del: %v", err)
		}
	})

	// dirMounts counts the mounts at /run/netns, those of the /run layers earlier subtests left
	// beneath this one's included.
	dirMounts := func(t *testing.T) int {
		t.Helper()
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[4] == netnsx.Dir {
				n++
			}
		}
		return n
	}

	t.Run("concurrent creates bind /run/netns once", func(t *testing.T) {
		freshRun(t)
		before := dirMounts(t)
		names := make([]string, 8)
		errs := make(chan error, len(names))
		for i := range names {
			names[i] = testenv.NSName("many")
			go func() {
				h, err := netnsx.Create(names[i])
				if err == nil {
					h.Close()
				}
				errs <- err
			}()
		}
		for range names {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if layers := dirMounts(t) - before; layers != 1 {
			t.Errorf("%s got %d new mounts, want one", netnsx.Dir, layers)
		}
		for _, n := range names {
			mustDelete(t, n)
		}
	})

	// A namespace bound on the plain directory (as vpcnet did before it followed iproute2's
	// convention) ends up beneath the layer the next `ip netns add` stacks on /run/netns.
	t.Run("namespace bound beneath a later /run/netns layer", func(t *testing.T) {
		freshRun(t)
		old, theirs := testenv.NSName("old"), testenv.NSName("ip")
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // the thread is left in the new namespace and discarded
			h, err := netns.NewNamed(old)
			if err == nil {
				h.Close()
			}
			errc <- err
		}()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		ip(t, "add", theirs)
		if err := unix.Unlink(netnsx.Path(old)); !errors.Is(err, unix.EBUSY) {
			// Without a hidden mount the subtest would prove nothing.
			t.Fatalf("setup: unlink %s = %v, want EBUSY (the hidden mount beneath the new layer)", old, err)
		}
		mustDelete(t, old)
		ip(t, "exec", theirs, "true")
		ip(t, "del", theirs)
		gone(t, theirs)
	})
}
