// Package faulttest holds the randomized fault test of issue 11: one node built from the real
// parts (vpcnetd as a process, vpcnet-cni exec'd through libcni in a node network namespace,
// vpcsim serving EC2 and IMDS over HTTP) is driven through a few hundred pod operations mixed,
// in a seeded random order, with faults: kill -9 of the agent, a full disk under its allocation
// store, a damaged journal line, an ENI detached through the EC2 API, concurrent verbs on one
// key and a restarted vpcsim. After every step the node must satisfy internal/invariant's
// invariant (no address on two pods, no live pod without its network, the agent's allocations,
// the plugin's records and the pods' interfaces agreeing) and every pod whose ADD was
// acknowledged and not yet deleted must still be recorded with the address ADD returned.
//
// Run briefly (the default, a few dozen steps) or long:
//
//	go test ./internal/faulttest/ -run TestRandomFaults -faulttest.steps=500 [-faulttest.seed=N]
//	VPCNET_FAULTTEST_STEPS=500 VPCNET_FAULTTEST_SEED=N go test ./internal/faulttest/
//
// The seed is logged; the same seed replays the same order of steps.
package faulttest
