package model

import (
	"encoding/json"
	"fmt"

	"github.com/vpcnet/vpcnet/internal/catalog"
)

// MarshalState encodes the whole state as JSON, for a snapshot.
func (m *Model) MarshalState() ([]byte, error) { return json.Marshal(&m.st) }

// Restore builds a model from MarshalState's output.
func Restore(data []byte, cat *catalog.Catalog) (*Model, error) {
	if cat == nil {
		cat = catalog.Builtin()
	}
	m := &Model{cat: cat}
	if err := json.Unmarshal(data, &m.st); err != nil {
		return nil, fmt.Errorf("vpcsim state: %w", err)
	}
	if m.st.VPCs == nil {
		m.st.VPCs = map[string]*VPC{}
	}
	if m.st.Subnets == nil {
		m.st.Subnets = map[string]*Subnet{}
	}
	if m.st.Instances == nil {
		m.st.Instances = map[string]*Instance{}
	}
	if m.st.ENIs == nil {
		m.st.ENIs = map[string]*ENI{}
	}
	m.reindex()
	return m, nil
}

// Pending lists attachments that are still attaching or detaching, for a server to finish
// after a restart.
func (m *Model) Pending() (attaching, detaching []string) {
	for _, id := range sortedKeys(m.st.ENIs) {
		if a := m.st.ENIs[id].Attachment; a != nil {
			switch a.Status {
			case AttachAttaching:
				attaching = append(attaching, a.ID)
			case AttachDetaching:
				detaching = append(detaching, a.ID)
			}
		}
	}
	return attaching, detaching
}
