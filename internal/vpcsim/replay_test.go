package vpcsim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// Issue 12 item 11: a journal holding every registered mutation replays into the same state.
// The server's state directory is copied while it runs (every change is in the journal before
// its reply), and a second server starts from the copy: it must replay every record and end
// in exactly the first server's state.
func TestJournalOfEveryMutationReplays(t *testing.T) {
	dir := t.TempDir()
	const lat = 50 * time.Millisecond
	s1, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{StateDir: dir,
		Latency: map[string]time.Duration{"AttachNetworkInterface": lat, "DetachNetworkInterface": lat}})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	f := &fixture{s: s1, c: client(s1, nil)}
	f.network(t, "10.0.0.0/16", "10.0.1.0/24")
	c := f.c
	inst := f.run(t, "m5.large")
	e := f.eni(t)
	id := e.NetworkInterfaceId
	att := must[*ec2.AttachNetworkInterfaceOutput](t)(c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: id, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)}))
	waitStatus := func(want types.AttachmentStatus) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			got := f.describeENI(t, *id)
			if (want == "" && got.Attachment == nil) || (got.Attachment != nil && got.Attachment.Status == want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("attachment never became %q: %+v", want, got.Attachment)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitStatus(types.AttachmentStatusAttached) // CompleteAttachment
	must[*ec2.ModifyNetworkInterfaceAttributeOutput](t)(c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: id, Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: att.AttachmentId, DeleteOnTermination: aws.Bool(false)}}))
	as := must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: id, SecondaryPrivateIpAddressCount: aws.Int32(3)}))
	must[*ec2.UnassignPrivateIpAddressesOutput](t)(c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: id,
		PrivateIpAddresses: []string{*as.AssignedPrivateIpAddresses[0].PrivateIpAddress}}))
	must[*ec2.CreateTagsOutput](t)(c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{*id}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}, {Key: aws.String("gone"), Value: aws.String("x")}}}))
	must[*ec2.DeleteTagsOutput](t)(c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{*id}, Tags: []types.Tag{{Key: aws.String("gone")}}}))
	must[*ec2.DetachNetworkInterfaceOutput](t)(c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}))
	waitStatus("") // CompleteDetachment
	doomed := f.eni(t)
	must[*ec2.DeleteNetworkInterfaceOutput](t)(c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: doomed.NetworkInterfaceId}))
	must[*ec2.TerminateInstancesOutput](t)(c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*inst.InstanceId}}))

	// Every registered mutation is in the journal.
	var seen []string
	jf, err := os.Open(filepath.Join(dir, "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(jf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct{ Action string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		if !slices.Contains(seen, rec.Action) {
			seen = append(seen, rec.Action)
		}
	}
	jf.Close()
	slices.Sort(seen)
	if want := model.MutationActions(); !slices.Equal(seen, want) {
		t.Fatalf("the journal holds %v; every mutation is %v (a new mutation needs a call here)", seen, want)
	}

	copyDir := t.TempDir()
	for _, name := range []string{"journal.jsonl", "state.json", "auth.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err == nil {
			if err := os.WriteFile(filepath.Join(copyDir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	s2, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{StateDir: copyDir})
	if err != nil {
		t.Fatalf("replaying the journal: %v", err)
	}
	defer s2.Close()
	state := func(s *vpcsim.Server) []byte {
		var b []byte
		if err := s.Read(func(m *model.Model) (err error) { b, err = m.MarshalState(); return err }); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, b := state(s1), state(s2); !bytes.Equal(a, b) {
		t.Fatalf("replayed state differs:\noriginal %s\nreplayed %s", a, b)
	}
}
