// Package bench is `vpcnet lab bench`: it builds its own labs, runs the performance scenarios
// (setup, burst, scale-out, churn, dataplane, footprint) and reports every figure next to a
// reference, with the ratio and the target. References are measured in the same run, but
// for the churn rows' upstream AWS VPC CNI figures (fixed, copied from issue 16, for the full
// traces) and the churn ceiling rows (computed on the trace by internal/bench/frontier).
//
// The pure part (stats.go, report.go, trace.go, parse.go) computes medians, percentiles,
// time-weighted ratios and critical paths, generates the churn trace and renders the table or
// JSON; it is table-tested. The scenarios (one file each) and the I/O edges (libcni, agent
// introspection, /proc, iperf3, netlink) sit around it. Everything the bench creates lives in
// namespaces named after its labs and is removed at the end, also on failure or interrupt.
package bench
