// Package bench is `vpcnet lab bench`: it builds its own labs, runs the performance scenarios
// (setup, burst, scale-out, churn, dataplane, footprint) and reports every figure next to a
// reference measured in the same run, with the ratio and the target.
//
// The pure part (stats.go, report.go, trace.go, parse.go) computes medians, percentiles,
// time-weighted ratios and critical paths, generates the churn trace and renders the table or
// JSON; it is table-tested. The scenarios (one file each) and the I/O edges (libcni, agent
// introspection, /proc, iperf3, netlink) sit around it. Everything the bench creates lives in
// namespaces named after its labs and is removed at the end, also on failure or interrupt.
package bench
