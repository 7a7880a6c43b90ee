// Package fabric is the lab's stand-in for the VPC network: a router namespace with one veth
// port per attached ENI, routes for every address and prefix assigned to an ENI, the AWS
// source/dest check, the link-local service addresses (IMDS, EC2 API) and an "internet"
// namespace only primary ENI addresses may reach.
//
// It follows vpcsim through its event hook. The decisions are pure (State turns events into
// Actions, see state.go); netlink.go carries actions out; fabric.go ties the two together.
package fabric
