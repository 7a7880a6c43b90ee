// Package controller is the long-running side of a lab: a detached process living in the lab's
// router namespace that runs vpcsim in-process with the fabric as its hook, serves the EC2 API
// and IMDS to the nodes on link-local addresses and to the root namespace on unix sockets, and
// owns the lab's nodes (instances, namespaces, vpcnetd processes) and pods (namespaces wired
// through libcni). The CLI drives it over the control API (package lab, api.go).
package controller
