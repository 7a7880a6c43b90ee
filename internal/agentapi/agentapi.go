// Package agentapi is the wire contract between vpcnet-cni and vpcnetd: the gRPC service
// generated from agent.proto, its version, and how to reach it on its unix socket.
package agentapi

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative agent.proto

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Version is the API version every request carries. The agent refuses other versions.
const Version = 1

// DefaultSocket is where vpcnetd listens unless told otherwise.
const DefaultSocket = "/run/vpcnet/vpcnetd.sock"

// Dial connects to the agent on a unix socket. The connection is lazy: errors show on the first call.
func Dial(socket string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("agent socket %s: %w", socket, err)
	}
	return conn, nil
}
