module github.com/container-vnic/container_vnic_exporter/examples/ebpfcount

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/container-vnic/container_vnic_exporter v0.0.0
	golang.org/x/sys v0.49.0
)

// The exporter's module as checked out around this example; a program of
// your own would require a released version instead.
replace github.com/container-vnic/container_vnic_exporter => ../..
