package vnic

import (
	"errors"
	"reflect"
	"testing"
)

func hostTable(ls ...link) func(int) (link, bool, error) {
	return func(i int) (link, bool, error) {
		for _, l := range ls {
			if l.Index == i {
				return l, true, nil
			}
		}
		return link{}, false, nil
	}
}

// The host numbers the container's namespace 4 and itself 9.
const containerNSID, hostSelf = 4, 9

func TestPair(t *testing.T) {
	host := hostTable(
		link{Index: 13, Name: "veth13", Kind: "veth", PeerIndex: 2, PeerNSID: containerNSID},
		link{Index: 14, Name: "br0", Kind: "bridge", PeerNSID: noNSID},
		link{Index: 20, Name: "vethother", Kind: "veth", PeerIndex: 3, PeerNSID: 5}, // peer in nsid 5
		link{Index: 21, Name: "vethsameidx", Kind: "veth", PeerIndex: 6, PeerNSID: 5},
		link{Index: 30, Name: "notveth", Kind: "bridge", PeerIndex: 7, PeerNSID: noNSID},
	)
	container := []link{
		{Index: 1, Name: "lo", PeerNSID: noNSID},
		{Index: 2, Name: "eth0", Kind: "veth", PeerIndex: 13, PeerNSID: hostSelf},
		// Peer in another container (nsid 5) whose index 21 exists on the host,
		// and that host veth's peer index even equals ours: still not ours.
		{Index: 6, Name: "tocontainer", Kind: "veth", PeerIndex: 21, PeerNSID: 5},
		// Claims a host peer, but the host link points back elsewhere.
		{Index: 3, Name: "liar", Kind: "veth", PeerIndex: 20, PeerNSID: hostSelf},
		// Claims a host peer that is not a veth.
		{Index: 7, Name: "odd", Kind: "veth", PeerIndex: 30, PeerNSID: hostSelf},
		// Host end already gone.
		{Index: 8, Name: "gone", Kind: "veth", PeerIndex: 99, PeerNSID: hostSelf},
		{Index: 5, Name: "mv0", Kind: "macvlan", PeerIndex: 14, PeerNSID: hostSelf},
		// Parent inside the container itself.
		{Index: 9, Name: "vlan9", Kind: "vlan", PeerIndex: 2, PeerNSID: noNSID},
	}
	got, err := pair(container, containerNSID, hostSelf, host)
	if err != nil {
		t.Fatal(err)
	}
	want := []VNIC{
		{ContainerIfname: "eth0", ContainerIfindex: 2, HostIfname: "veth13", HostIfindex: 13, Kind: "veth"},
		{ContainerIfname: "mv0", ContainerIfindex: 5, HostIfname: "br0", HostIfindex: 14, Kind: "macvlan"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestPairUnknownSelfID(t *testing.T) {
	// Before the host has an id for itself no container link can point at it.
	got, err := pair([]link{{Index: 2, Name: "eth0", Kind: "veth", PeerIndex: 13, PeerNSID: 0}}, 0, noNSID,
		hostTable(link{Index: 13, Name: "h", Kind: "veth", PeerIndex: 2, PeerNSID: 0}))
	if err != nil || got != nil {
		t.Fatalf("got %+v, %v; want nothing", got, err)
	}
}

func TestPairLookupError(t *testing.T) {
	boom := errors.New("boom")
	_, err := pair([]link{{Index: 2, Name: "eth0", Kind: "veth", PeerIndex: 13, PeerNSID: hostSelf}}, containerNSID, hostSelf,
		func(int) (link, bool, error) { return link{}, false, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want %v", err, boom)
	}
}
