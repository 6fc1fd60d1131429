// Package nlcompare measures the dependencies the design card named
// against what the project does instead (docs/how-it-works.md,
// "Dependencies"): the three ways it could speak rtnetlink, internal/rtnl's
// raw socket (what it uses), github.com/vishvananda/netlink's nl package
// (what it used until issue 20) and github.com/mdlayher/netlink; and
// github.com/prometheus/procfs for the /proc walk (procfs_test.go). It is
// a module of its own so that these libraries stay out of the exporter's
// go.mod. Every transport
// sends the same requests and hands each reply to the same parser
// (rtnl.ParseLink): the difference is the transport alone.
//
//	cd bench/nlcompare && BENCH_NETNS=1000 BENCH_ROUNDS=3 go test -run '^$' -bench Transports -benchmem -benchtime 2s -timeout 60m
package nlcompare

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	mdnetlink "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/container-vnic/container_vnic_exporter/internal/netnstest"
	"github.com/container-vnic/container_vnic_exporter/internal/rtnl"
)

// transport is one way to ask for links: a dump of the host (nsid
// rtnl.NoNSID) or of a namespace aimed at its id, and a get by ifindex.
type transport struct {
	dump func(nsid int) (int, error)
	get  func(index int) error
}

func raw(tb testing.TB) transport {
	c, err := rtnl.Open()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return transport{
		dump: func(nsid int) (int, error) {
			ls, err := c.Links(nsid)
			return len(ls), err
		},
		get: func(index int) error {
			var l rtnl.Link
			ok, err := c.LinkByIndex(index, &l)
			if err == nil && !ok {
				err = fmt.Errorf("ifindex %d: no such link", index)
			}
			return err
		},
	}
}

// retry repeats a dump the kernel marked interrupted (the host's links
// change all the time on a shared machine), for as long as rtnl does.
func retry(dump func(nsid int) (int, bool, error)) func(nsid int) (int, error) {
	return func(nsid int) (int, error) {
		deadline := time.Now().Add(rtnl.DumpBudget)
		for {
			n, interrupted, err := dump(nsid)
			if !interrupted || time.Now().After(deadline) {
				return n, err
			}
		}
	}
}

func vishvananda(tb testing.TB) transport {
	s, err := nl.Subscribe(unix.NETLINK_ROUTE) // a plain bound socket; no groups
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	sockets := map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
	return transport{
		dump: retry(func(nsid int) (int, bool, error) {
			req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
			req.Sockets = sockets
			req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
			if nsid != rtnl.NoNSID {
				req.AddData(nl.NewRtAttr(unix.IFLA_TARGET_NETNSID, nl.Uint32Attr(uint32(nsid))))
			}
			n := 0
			var perr error
			err := req.ExecuteIter(unix.NETLINK_ROUTE, unix.RTM_NEWLINK, func(m []byte) bool {
				_, perr = rtnl.ParseLink(m)
				n++
				return perr == nil
			})
			if err == nil {
				err = perr
			}
			return n, errors.Is(err, nl.ErrDumpInterrupted), err
		}),
		get: func(index int) error {
			req := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
			req.Sockets = sockets
			msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
			msg.Index = int32(index)
			req.AddData(msg)
			msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
			if err == nil && len(msgs) == 1 {
				_, err = rtnl.ParseLink(msgs[0])
			}
			return err
		},
	}
}

func mdlayher(tb testing.TB) transport {
	c, err := mdnetlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	ifinfo := func(index int) []byte {
		b := make([]byte, unix.SizeofIfInfomsg)
		binary.NativeEndian.PutUint32(b[4:], uint32(index))
		return b
	}
	return transport{
		dump: retry(func(nsid int) (int, bool, error) {
			data := ifinfo(0)
			if nsid != rtnl.NoNSID {
				ae := mdnetlink.NewAttributeEncoder()
				ae.Uint32(unix.IFLA_TARGET_NETNSID, uint32(nsid))
				attrs, err := ae.Encode()
				if err != nil {
					return 0, false, err
				}
				data = append(data, attrs...)
			}
			msgs, err := c.Execute(mdnetlink.Message{
				Header: mdnetlink.Header{Type: unix.RTM_GETLINK, Flags: mdnetlink.Request | mdnetlink.Dump},
				Data:   data,
			})
			interrupted := false
			for _, m := range msgs {
				interrupted = interrupted || m.Header.Flags&mdnetlink.DumpInterrupted != 0
				if _, err := rtnl.ParseLink(m.Data); err != nil {
					return 0, false, err
				}
			}
			return len(msgs), interrupted, err
		}),
		get: func(index int) error {
			msgs, err := c.Execute(mdnetlink.Message{
				Header: mdnetlink.Header{Type: unix.RTM_GETLINK, Flags: mdnetlink.Request},
				Data:   ifinfo(index),
			})
			if err == nil && len(msgs) == 1 {
				_, err = rtnl.ParseLink(msgs[0].Data)
			}
			return err
		},
	}
}

// fleetSize is BENCH_NETNS, 1,000 by default: the scale the issue asks.
func fleetSize(tb testing.TB) int {
	v := os.Getenv("BENCH_NETNS")
	if v == "" {
		return 1000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("BENCH_NETNS=%q: want a positive number", v)
	}
	return n
}

// BenchmarkTransports, per transport, at BENCH_NETNS namespaces each
// holding a veth to the host:
//
//	host-dump:   one RTM_GETLINK dump of the host (every namespace's host end)
//	aimed-dumps: one RTM_GETLINK dump aimed at each namespace's id, all of
//	             them: what fresh counters cost per scrape
//	gets:        one RTM_GETLINK of each namespace's host end by ifindex,
//	             all of them: how ResolvePID and the change stream ask
func BenchmarkTransports(b *testing.B) {
	n := fleetSize(b)
	fleet := netnstest.Fleet(b, n, 0)
	c, err := rtnl.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	nsids := make([]int, n)
	for i, m := range fleet {
		f, err := os.Open("/run/netns/" + m.Netns)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.AssignNSID(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		nsids[i], err = c.NSIDOf(int(f.Fd()))
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	host, err := c.Links(rtnl.NoNSID)
	if err != nil {
		b.Fatal(err)
	}
	byName := map[string]int{}
	for _, l := range host {
		byName[l.Name] = l.Index
	}
	indexes := make([]int, n)
	for i, m := range fleet {
		indexes[i] = byName[m.Host]
	}
	transports := []struct {
		name string
		t    transport
	}{{"raw", raw(b)}, {"vishvananda", vishvananda(b)}, {"mdlayher", mdlayher(b)}}
	// Rounds interleave the transports, so that a change of load on a
	// shared machine falls on all of them alike (use -count 1).
	for range rounds(b) {
		for _, tr := range transports {
			t := tr.t
			b.Run(fmt.Sprintf("host-dump/netns=%d/%s", n, tr.name), func(b *testing.B) {
				stop := netnstest.ReportCPU(b)
				defer stop()
				for i := 0; i < b.N; i++ {
					if got, err := t.dump(rtnl.NoNSID); err != nil || got < n {
						b.Fatalf("%d links, %v", got, err)
					}
				}
			})
			b.Run(fmt.Sprintf("aimed-dumps/netns=%d/%s", n, tr.name), func(b *testing.B) {
				stop := netnstest.ReportCPU(b)
				defer stop()
				for i := 0; i < b.N; i++ {
					for _, id := range nsids {
						if got, err := t.dump(id); err != nil || got != 2 {
							b.Fatalf("nsid %d: %d links, %v", id, got, err)
						}
					}
				}
			})
			b.Run(fmt.Sprintf("gets/netns=%d/%s", n, tr.name), func(b *testing.B) {
				stop := netnstest.ReportCPU(b)
				defer stop()
				for i := 0; i < b.N; i++ {
					for _, index := range indexes {
						if err := t.get(index); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// rounds is BENCH_ROUNDS, 1 by default.
func rounds(tb testing.TB) int {
	v := os.Getenv("BENCH_ROUNDS")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("BENCH_ROUNDS=%q: want a positive number", v)
	}
	return n
}
