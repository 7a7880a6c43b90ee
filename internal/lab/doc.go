// Package lab runs a vpcnet cluster on one machine: a VPC emulated by vpcsim whose fabric is a
// router network namespace, nodes that are namespaces each running its own vpcnetd, and pods
// that are namespaces wired by vpcnet-cni through libcni. This package holds what the CLI side
// needs: lab names and paths, the control client, bringing a lab up and tearing it down, and
// the demo. The long-running side lives in package controller; the data-plane fabric in fabric.
package lab
