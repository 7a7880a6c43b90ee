// Package probe checks the lab's data plane from inside its namespaces, in Go only: an ICMP
// echo, a TCP transfer with a checksum, a scan for tunnel devices, and dialing from a namespace.
// Sockets are opened with the calling thread inside the namespace and used from anywhere after.
package probe
