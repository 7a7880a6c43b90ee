// Package plan is the capacity planner: given a VPC, its subnets, an instance type, a node count,
// pods per node, the IP mode and the warm-pool settings, it works out what every node holds, what
// every subnet has left, how many more nodes fit and what runs out first, under secondary-IP mode,
// prefix mode and an overlay side by side.
//
// It is pure: no I/O, no clock, the same input gives the same answer. docs/planning.md gives the
// formulas; the comments here say where each one lives.
//
// The model, in short:
//   - Nodes spread over the subnets round robin in the order given: node i lives in subnet i mod n.
//     All of a node's ENIs are in its node's subnet (no custom networking).
//   - Every ENI has one primary address from the subnet that is never a pod address; a node's own
//     primary address is its first ENI's.
//   - A node's pool starts empty and grows as the AWS VPC CNI's ipamd grows it (see pool.go); pods
//     arrive one at a time and each takes one address.
//   - A subnet loses its first four addresses and its last one to AWS. A /28 prefix needs a fully
//     free aligned /28, so the first and the last /28 of a subnet never hold a prefix.
package plan
