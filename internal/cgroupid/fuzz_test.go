package cgroupid

import (
	"strings"
	"testing"
)

// FuzzParse checks that Parse, either way, never invents an id: whatever it returns must
// be well formed and be found in the input. Seeds: testdata/fuzz/FuzzParse
// (whole /proc/PID/cgroup files) and every path of the FromPath table.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 60s ./internal/cgroupid
func FuzzParse(f *testing.F) {
	for _, tc := range pathCases {
		f.Add([]byte("0::" + tc.path + "\n"))
		f.Add([]byte(v1Lines(tc.path)))
	}
	for _, tc := range nestingCases {
		f.Add([]byte("0::" + tc.path + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, id := range []Identity{Parse(data), (Options{Nested: true}).Parse(data)} {
			checkFound(t, id, string(data))
		}
	})
}

// checkFound fails unless id is well formed and found in input.
func checkFound(t *testing.T, id Identity, input string) {
	t.Helper()
	checkShape(t, id)
	if id.ContainerID != "" && !strings.Contains(input, id.ContainerID) {
		t.Errorf("ContainerID %q is not in the input", id.ContainerID)
	}
	// systemd spells the UID with "_"; compare the hex digits only.
	digits := strings.NewReplacer("-", "", "_", "")
	if id.PodUID != "" && !strings.Contains(digits.Replace(input), digits.Replace(id.PodUID)) {
		t.Errorf("PodUID %q is not in the input", id.PodUID)
	}
}
