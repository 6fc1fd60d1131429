package vnic

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/container-vnic/container_vnic_exporter/internal/rtnl"
)

// A dump the kernel answered for the wrong namespace fails the PID's
// resolution with a one-line message naming the kernel requirement.
func TestTargetIgnoredMessage(t *testing.T) {
	err := rtnl.CheckTarget([]link{{Index: 1, Name: "lo", TargetNSID: noNSID}}, 4)
	if !errors.Is(err, rtnl.ErrTargetIgnored) {
		t.Fatalf("got %v, want ErrTargetIgnored", err)
	}
	msg := (&Error{PID: 42, Cause: CauseNetlink, Err: err}).Error()
	if !strings.Contains(msg, "pid 42") || !strings.Contains(msg, "4.20") || strings.Contains(msg, "\n") {
		t.Fatalf("message %q must name the PID and the kernel requirement on one line", msg)
	}
}

func TestParseNetnsLink(t *testing.T) {
	for in, want := range map[string]uint64{
		"net:[4026531840]":           4026531840,
		"net:[1]":                    1,
		"net:[18446744073709551615]": 18446744073709551615,
	} {
		got, err := parseNetnsLink(in)
		if err != nil || got != want {
			t.Errorf("parseNetnsLink(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "net:[]", "net:[0]", "mnt:[4026531840]", "net:[4026531840", "net:[-1]",
		"net:[18446744073709551616]", "net:[ 1]", "/proc/1/ns/net", "net:[4026531840]x"} {
		if got, err := parseNetnsLink(in); err == nil {
			t.Errorf("parseNetnsLink(%q) = %d, want an error", in, got)
		}
	}
}

func FuzzParseNetnsLink(f *testing.F) {
	f.Add("net:[4026531840]")
	f.Add("net:[]")
	f.Add("pid:[4026531836]")
	f.Fuzz(func(t *testing.T, s string) {
		ino, err := parseNetnsLink(s)
		if err == nil && (ino == 0 || s != "net:["+strconv.FormatUint(ino, 10)+"]") {
			t.Fatalf("parseNetnsLink(%q) = %d: not the canonical form", s, ino)
		}
	})
}
