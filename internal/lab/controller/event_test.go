package controller

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// TestFabricEventCopiesEveryField fails when vpcsim's Event grows a field the fabric does not
// receive, or the two drift apart.
func TestFabricEventCopiesEveryField(t *testing.T) {
	ev := vpcsim.Event{Kind: vpcsim.EventENIAttached, InstanceID: "i-1", ENIID: "eni-1", MAC: "02:00:00:00:00:01",
		DeviceIndex: 2, Subnet: netip.MustParsePrefix("10.10.1.0/24"),
		Addrs:    []netip.Addr{netip.MustParseAddr("10.10.1.4")},
		Prefixes: []netip.Prefix{netip.MustParsePrefix("10.10.1.16/28")},
		Addr:     netip.MustParseAddr("10.10.1.5"), Prefix: netip.MustParsePrefix("10.10.1.32/28")}
	src := reflect.ValueOf(ev)
	for i := range src.NumField() {
		if src.Field(i).IsZero() {
			t.Fatalf("test event leaves vpcsim.Event.%s unset: set it", src.Type().Field(i).Name)
		}
	}
	got := reflect.ValueOf(fabricEvent(ev))
	for i := range src.NumField() {
		name := src.Type().Field(i).Name
		f := got.FieldByName(name)
		if !f.IsValid() {
			t.Errorf("fabric.Event has no field %s", name)
			continue
		}
		if !reflect.DeepEqual(f.Interface(), src.Field(i).Interface()) {
			t.Errorf("%s: got %v, want %v", name, f.Interface(), src.Field(i).Interface())
		}
	}
}
