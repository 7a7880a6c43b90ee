package cloud

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// slowWriteConn returns from each Write a while after the bytes went out, as a write loop
// that the scheduler set aside would.
type slowWriteConn struct{ net.Conn }

func (c slowWriteConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	time.Sleep(30 * time.Millisecond)
	return n, err
}

// A call whose answer arrives while net/http's write loop is still busy with the request
// (it has sent the body but not yet made its last read of it) succeeds at the first attempt.
// The SDK closes the body it built as soon as the answer's headers are in, and a closed SDK
// body fails that last read; the transport then closed the connection under the answer being
// read and the SDK retried after a jittered backoff of up to 2 s: the intermittent delay
// before a new node's first addresses.
func TestAnswerDuringRequestWrite(t *testing.T) {
	sim, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	// vpcsim's answer, sent in two parts: the rest comes after the client had time to fail.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, sim.Endpoint()+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		req.Host = r.Host // the host the client signed
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer[:len(answer)/2])
		w.(http.Flusher).Flush()
		time.Sleep(150 * time.Millisecond)
		_, _ = w.Write(answer[len(answer)/2:])
	}))
	t.Cleanup(front.Close)
	var attempts atomic.Int64
	op := sim.OperatorCredentials()
	t.Setenv("AWS_ACCESS_KEY_ID", op.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", op.SecretAccessKey)
	c, err := New(context.Background(), Config{EC2Endpoint: front.URL, Region: "us-east-1", MaxAttempts: 3,
		Observer: Observer{Attempt: func(string) { attempts.Add(1) }},
		transport: func(tr *http.Transport) {
			dial := tr.DialContext
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return slowWriteConn{conn}, nil
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ec2.CreateVpc(context.Background(), &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("CreateVpc took %d attempts, want 1", n)
	}
}
