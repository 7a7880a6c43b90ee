// Command vtool is the lab's test image: one static program for what the tests run in a pod.
//
//	vtool serve [ADDR]        HTTP on ADDR (default :8080): GET / answers "HOSTNAME SOURCE-IP\n"
//	vtool get URL             prints the body of an HTTP GET (5 s timeout); exit 1 on failure
//	vtool ping [-c N] ADDR    ICMP echo, N requests (default 3) a second apart; exit 1 if none answered
//	vtool addrs               the IPv4 addresses of every interface, "IFACE ADDR/BITS" a line
//	vtool sleep SECONDS|infinity
//
// With no argument it serves. ping needs CAP_NET_RAW, which a container has by default.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"serve"}
	}
	var err error
	switch args[0] {
	case "serve":
		addr := ":8080"
		if len(args) > 1 {
			addr = args[1]
		}
		err = serve(addr)
	case "get":
		if len(args) != 2 {
			err = fmt.Errorf("usage: vtool get URL")
			break
		}
		err = get(args[1])
	case "ping":
		err = ping(args[1:])
	case "addrs":
		err = addrs()
	case "sleep":
		if len(args) != 2 {
			err = fmt.Errorf("usage: vtool sleep SECONDS|infinity")
			break
		}
		err = sleep(args[1])
	default:
		err = fmt.Errorf("unknown command %q: want serve, get, ping, addrs or sleep", args[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vtool:", err)
		os.Exit(1)
	}
}

func serve(addr string) error {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s %s\n", host, ip)
	})
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		<-sigs
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func get(url string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

func ping(args []string) error {
	count := 3
	if len(args) == 3 && args[0] == "-c" {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return fmt.Errorf("ping: -c wants a positive count, not %q", args[1])
		}
		count, args = n, args[2:]
	}
	if len(args) != 1 {
		return fmt.Errorf("usage: vtool ping [-c N] ADDR")
	}
	dst, err := net.ResolveIPAddr("ip4", args[0])
	if err != nil {
		return err
	}
	conn, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer conn.Close()
	id := uint16(os.Getpid())
	got := 0
	buf := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		msg := make([]byte, 16)
		msg[0] = 8 // echo request
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], uint16(seq))
		binary.BigEndian.PutUint64(msg[8:], uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
		start := time.Now()
		if _, err := conn.WriteTo(msg, dst); err != nil {
			return err
		}
		deadline := start.Add(time.Second)
		_ = conn.SetReadDeadline(deadline)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				fmt.Printf("no reply from %s: seq=%d\n", dst, seq)
				break
			}
			if n >= 8 && buf[0] == 0 && binary.BigEndian.Uint16(buf[4:]) == id && binary.BigEndian.Uint16(buf[6:]) == uint16(seq) {
				got++
				fmt.Printf("reply from %s: seq=%d time=%s\n", from, seq, time.Since(start).Round(time.Microsecond))
				time.Sleep(time.Until(deadline))
				break
			}
		}
	}
	fmt.Printf("%d sent, %d received\n", count, got)
	if got == 0 {
		return fmt.Errorf("no reply from %s", dst)
	}
	return nil
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func addrs() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifs {
		as, _ := i.Addrs()
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				ones, _ := n.Mask.Size()
				fmt.Printf("%s %s/%d\n", i.Name, n.IP, ones)
			}
		}
	}
	return nil
}

func sleep(s string) error {
	if s == "infinity" {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		<-sigs
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("sleep: want seconds or infinity, not %q", s)
	}
	time.Sleep(time.Duration(n * float64(time.Second)))
	return nil
}
