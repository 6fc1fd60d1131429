package vnicwatch

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

func row(netns uint64, pid, index int, container, host, kind string) Row {
	return Row{PID: pid, Netns: netns, VNIC: vnic.VNIC{ContainerIfname: container, ContainerIfindex: index,
		HostIfname: host, HostIfindex: 100 + index, Kind: kind}}
}

func rows(rs ...Row) map[Key]Row {
	m := map[Key]Row{}
	for _, r := range rs {
		m[keyOf(r)] = r
	}
	return m
}

func TestDiff(t *testing.T) {
	a := row(1, 10, 2, "eth0", "veth1", "veth")
	aRenamed := row(1, 10, 2, "eth0", "veth9", "veth")
	aPID := row(1, 11, 2, "eth0", "veth1", "veth")
	b := row(2, 20, 2, "eth0", "veth2", "veth")
	b3 := row(2, 20, 3, "eth1", "veth3", "veth")
	c := row(3, 30, 2, "eth0", "veth4", "veth")
	for _, tc := range []struct {
		name     string
		old, new map[Key]Row
		want     []Change
	}{
		{"nothing", nil, nil, nil},
		{"same", rows(a, b), rows(a, b), nil},
		{"start", nil, rows(b, a), []Change{{Event: Added, Row: a}, {Event: Added, Row: b}}},
		{"end", rows(a, b), nil, []Change{{Event: Removed, Row: a}, {Event: Removed, Row: b}}},
		{"host end renamed", rows(a), rows(aRenamed), []Change{{Event: Changed, Row: aRenamed, Old: &a}}},
		{"oldest process changed", rows(a), rows(aPID), []Change{{Event: Changed, Row: aPID, Old: &a}}},
		// Removals first, then changes, then additions, each in namespace
		// and index order: an attacher detaches before it attaches.
		{"all at once", rows(a, b, b3), rows(aRenamed, c, b),
			[]Change{{Event: Removed, Row: b3}, {Event: Changed, Row: aRenamed, Old: &a}, {Event: Added, Row: c}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Diff(tc.old, tc.new); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	veth := row(1, 10, 2, "eth0", "cali1", "veth")
	vethOther := row(1, 10, 2, "eth0", "veth1", "veth")
	mv := row(1, 10, 3, "eth1", "ens3", "macvlan")
	podman := veth
	podman.Runtime = "podman"
	for _, tc := range []struct {
		name string
		f    Filter
		in   Change
		want *Change
	}{
		{"no filter", Filter{}, Change{Event: Added, Row: mv}, &Change{Event: Added, Row: mv}},
		{"veth only drops a macvlan's parent", Filter{Kinds: []string{"veth"}}, Change{Event: Present, Row: mv}, nil},
		{"veth only keeps a veth", Filter{Kinds: []string{"veth"}}, Change{Event: Removed, Row: veth}, &Change{Event: Removed, Row: veth}},
		{"kinds listed", Filter{Kinds: []string{"veth", "macvlan"}}, Change{Event: Added, Row: mv}, &Change{Event: Added, Row: mv}},
		{"host pattern", Filter{HostIfnames: []string{"cali*"}}, Change{Event: Added, Row: veth}, &Change{Event: Added, Row: veth}},
		{"host pattern misses", Filter{HostIfnames: []string{"cali*"}}, Change{Event: Added, Row: vethOther}, nil},
		{"container pattern", Filter{ContainerIfnames: []string{"eth[0-9]"}}, Change{Event: Added, Row: mv}, &Change{Event: Added, Row: mv}},
		{"runtime", Filter{Runtimes: []string{"podman"}}, Change{Event: Added, Row: podman}, &Change{Event: Added, Row: podman}},
		{"runtime misses", Filter{Runtimes: []string{"docker"}}, Change{Event: Added, Row: podman}, nil},
		{"unknown runtime", Filter{Runtimes: []string{""}}, Change{Event: Added, Row: veth}, &Change{Event: Added, Row: veth}},
		// A rename into the pattern is an addition, out of it a removal.
		{"renamed into the pattern", Filter{HostIfnames: []string{"cali*"}},
			Change{Event: Changed, Row: veth, Old: &vethOther}, &Change{Event: Added, Row: veth}},
		{"renamed out of the pattern", Filter{HostIfnames: []string{"cali*"}},
			Change{Event: Changed, Row: vethOther, Old: &veth}, &Change{Event: Removed, Row: veth}},
		{"changed within", Filter{HostIfnames: []string{"*"}},
			Change{Event: Changed, Row: vethOther, Old: &veth}, &Change{Event: Changed, Row: vethOther, Old: &veth}},
		{"changed outside", Filter{HostIfnames: []string{"x*"}}, Change{Event: Changed, Row: vethOther, Old: &veth}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.f.Apply(tc.in)
			if (tc.want == nil) != !ok || (ok && !reflect.DeepEqual(got, *tc.want)) {
				t.Fatalf("Apply = %+v, %v; want %+v", got, ok, tc.want)
			}
		})
	}
	if err := (Filter{HostIfnames: []string{"veth["}}).Check(); err == nil {
		t.Fatal("a malformed pattern must be refused")
	}
	if err := (Filter{Runtimes: []string{"docker", "dokcer"}}).Check(); err == nil || !strings.Contains(err.Error(), `"dokcer"`) {
		t.Fatalf("a runtime no row can have must be refused, by name: %v", err)
	}
	if err := (Filter{Runtimes: []string{"docker", "containerd", "cri-o", "podman", ""}}).Check(); err != nil {
		t.Fatalf("every runtime a row can have: %v", err)
	}
	for _, k := range []string{"vet", "VETH", ""} {
		if err := (Filter{Kinds: []string{"veth", k}}).Check(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", k)) {
			t.Fatalf("kind %q no row can have must be refused, by name: %v", k, err)
		}
	}
	if err := (Filter{Kinds: []string{"veth", "macvlan", "macvtap", "ipvlan", "ipvtap", "vlan"}}).Check(); err != nil {
		t.Fatalf("every kind a row can have: %v", err)
	}
}
