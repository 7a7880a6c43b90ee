package dataplane_test

import (
	"testing"

	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// ownNS is a test namespace the test can remove early (a pod whose runtime already dropped it).
type ownNS struct{ name, path string }

func mustNS(t *testing.T) *ownNS {
	t.Helper()
	testenv.RequireNetns(t)
	name := testenv.NSName("pod")
	h, err := netnsx.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	n := &ownNS{name: name, path: netnsx.Path(name)}
	t.Cleanup(func() { _ = netnsx.Delete(name) })
	return n
}

func (n *ownNS) remove(t *testing.T) {
	t.Helper()
	if err := netnsx.Delete(n.name); err != nil {
		t.Fatal(err)
	}
}
