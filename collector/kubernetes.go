package collector

import (
	"strconv"

	dto "github.com/prometheus/client_model/go"

	"github.com/container-vnic/container_vnic_exporter/internal/kube"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

// Kubernetes names pods by UID: *kube.Client. Pods is asked once per
// resolution, with the pod UID and container ID of every namespace with
// vNICs, and says whether the runtime answered.
type Kubernetes interface {
	Pods(refs []kube.PodRef) (map[string]kube.Pod, bool)
}

// KubernetesLabels are the labels WithKubernetes adds.
var KubernetesLabels = []string{"namespace", "pod"}

var (
	containerInfoDef = newDef(namespace+"_container_info",
		"A running container of the Kubernetes pod in a network namespace, as the node's container runtime (CRI) names it (value is always 1).",
		dto.MetricType_GAUGE, "netns", "namespace", "pod", "container", "container_id", "image")
	kubeUpDef = newDef(namespace+"_kubernetes_up",
		"1 if the node's container runtime (CRI) answered the last query for pod names, else 0 (names last seen are kept for namespaces still present).",
		dto.MetricType_GAUGE)
)

// WithKubernetes adds namespace and pod labels (a LabelSource: see there
// for where they go), named by k from the pod_uid label of a source added
// before (WithIdentity; without it every name is ""), and the families
// container_vnic_container_info and container_vnic_kubernetes_up. k is
// asked once per resolution, for every namespace at once.
func (c *Collector) WithKubernetes(k Kubernetes) *Collector {
	c.kube = &kubeSource{k: k}
	return c.WithLabels(LabelSource{Names: KubernetesLabels, Prepare: c.kube.prepare, Values: c.kube.values})
}

// kubeSource is the state of one resolution's names, from its prepare to
// its families (Collector.extraValues runs them in turn).
type kubeSource struct {
	k     Kubernetes
	pods  map[string]kube.Pod    // by pod UID
	refOf map[uint64]kube.PodRef // by netns, for those with a pod UID
	up    bool
}

func (s *kubeSource) prepare(all []NamespaceLabels) {
	s.refOf = make(map[uint64]kube.PodRef, len(all))
	refs := make([]kube.PodRef, 0, len(all))
	for _, ns := range all {
		if uid := ns.Value("pod_uid"); uid != "" {
			r := kube.PodRef{UID: uid, ContainerID: ns.Value("container_id")}
			s.refOf[ns.Netns] = r
			refs = append(refs, r)
		}
	}
	s.pods, s.up = s.k.Pods(refs)
}

func (s *kubeSource) values(netns uint64, _ int) []string {
	p := s.pods[s.refOf[netns].UID]
	return []string{p.Namespace, p.Name}
}

// families adds the samples of container_info (each running container of
// the pods of snap's namespaces, of the sandbox whose namespace it is when
// a pod has two: see kube.Pod.In) and kubernetes_up to byDef.
func (s *kubeSource) families(snap *vnic.Snapshot, byDef map[*familyDef][]sample) {
	var containers []sample
	for i := range snap.Namespaces {
		ns := &snap.Namespaces[i]
		r, ok := s.refOf[ns.Inode]
		if !ok || len(ns.VNICs) == 0 {
			continue
		}
		p := s.pods[r.UID]
		ino := strconv.FormatUint(ns.Inode, 10)
		for _, ct := range p.In(r.ContainerID) {
			containers = append(containers, sample{containerInfoDef.schema.series(ino, labelValue(p.Namespace), labelValue(p.Name),
				labelValue(ct.Name), labelValue(ct.ID), labelValue(ct.Image)), 1})
		}
	}
	byDef[containerInfoDef] = containers
	byDef[kubeUpDef] = []sample{{noLabels, boolValue(s.up)}}
}
