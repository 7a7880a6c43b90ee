package netnsx_test

import (
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

func TestCreateListDelete(t *testing.T) {
	testenv.RequireNetns(t)
	name := testenv.NSName("netnsx")
	h, err := netnsx.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netnsx.Delete(name) })
	if _, err := netnsx.Create(name); err == nil {
		t.Fatalf("second Create(%s) succeeded, want an error", name)
	}
	err = h.Do(func(ns.NetNS) error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if lo.Attrs().Flags&1 == 0 {
			t.Errorf("lo is down in a new namespace")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	names, err := netnsx.List(name)
	if err != nil || len(names) != 1 || names[0] != name {
		t.Fatalf("List(%q) = %v, %v; want [%s]", name, names, err, name)
	}
	if err := netnsx.Delete(name); err != nil {
		t.Fatal(err)
	}
	if err := netnsx.Delete(name); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if names, _ := netnsx.List(name); len(names) != 0 {
		t.Fatalf("namespace still listed after Delete: %v", names)
	}
}
