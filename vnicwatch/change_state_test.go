package vnicwatch

import (
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// A link's state is no part of a row: a carrier or MTU that changes, or
// an operstate that follows carrier a moment after `ip link add`, is no
// "changed" event.
func TestRowIgnoresLinkState(t *testing.T) {
	v := vnic.VNIC{ContainerIfname: "eth0", ContainerIfindex: 2, HostIfname: "veth1", HostIfindex: 9, Kind: "veth"}
	before := v
	before.ContainerState = vnic.LinkState{MTU: 1500, OperState: 2}
	after := v
	after.ContainerState = vnic.LinkState{MTU: 9000, OperState: vnic.OperUp, Carrier: true}
	after.HostState = after.ContainerState
	id := cgroupid.Identity{}
	b, a := NewRow(1, 10, before, id), NewRow(1, 10, after, id)
	if changes := Diff(map[Key]Row{keyOf(b): b}, map[Key]Row{keyOf(a): a}); len(changes) != 0 {
		t.Fatalf("a change of link state only gave %+v", changes)
	}
}
