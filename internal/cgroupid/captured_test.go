package cgroupid

import (
	"os"
	"path/filepath"
	"testing"
)

// /proc/PID/cgroup copied from this machine (cgroup v1 hybrid, no systemd)
// while the Docker and CRI tests of cmd/container_vnic_exporter ran: a
// container of dockerd 20.10 (cgroupfs driver), and a container of a pod
// that containerd 1.6's CRI made with kubelet's cgroupfs parent
// /kubepods/besteffort/pod<uid>.
func TestParseCapturedDockerAndCRI(t *testing.T) {
	for file, want := range map[string]Identity{
		"docker-cgroupfs-v1-hybrid.cgroup": {
			ContainerID: "5e7f8bf88d42807da4cdc98de9a6bf08f13d582b6e70201bcaefb88d2d985788", Runtime: "docker"},
		// Any CRI runtime makes this layout alike: no runtime.
		"containerd-cri-cgroupfs-v1-hybrid.cgroup": {
			ContainerID: "52daabfce2678da5d95e5c08d0e583d3418e8afc9dc9b9b4838fb5058a142553",
			PodUID:      "ea71d6e8-1e98-483c-adfb-abb2190884ce"},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if got := Parse(b); got != want {
			t.Errorf("%s: got %+v, want %+v", file, got, want)
		}
	}
}
