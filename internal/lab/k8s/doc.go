// Package k8s makes a vpcnet lab a real Kubernetes cluster (`vpcnet lab up --runtime
// kubernetes`): etcd, kube-apiserver, kube-controller-manager and kube-scheduler in the lab's
// router namespace, reached by the nodes at the first subnet's router address over the VPC
// fabric; and on every node, in the node's network namespace and a mount namespace of its own,
// containerd and a kubelet that runs pods through vpcnet-cni. The binaries come from the build
// cache (package cache); the recipe and its pitfalls are in shared/notes/kubernetes-lab.md.
//
// It registers itself as the lab runtime "kubernetes" (lab.RegisterRuntime).
package k8s
