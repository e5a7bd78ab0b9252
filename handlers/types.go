package handlers

import (
	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func sessionView(s *domain.Session, withCheckpoints bool) client.SessionView {
	v := client.SessionView{
		ID: s.ID, Tenant: s.Tenant, Status: string(s.Status), Owner: s.Owner, Tags: s.Tags,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Position: s.Position, Start: s.Start,
		Version: s.Version, Root: s.Tree.Hash().String(),
	}
	if o := s.Origin; o != (domain.Origin{}) {
		v.Origin = &client.OriginView{Source: o.Source, Revision: o.Revision, Parent: o.Parent, Position: o.Position}
	}
	if withCheckpoints {
		for _, cp := range sortedCheckpoints(s) {
			v.Checkpoints = append(v.Checkpoints, checkpointView(cp))
		}
	}
	return v
}

func checkpointView(cp domain.Checkpoint) client.CheckpointView {
	return client.CheckpointView{Name: cp.Name, Position: cp.Position, Note: cp.Note, Actor: cp.Actor, CreatedAt: cp.CreatedAt, CreatedPosition: cp.At}
}

func entryView(path string, n *domain.Node) client.EntryView {
	v := client.EntryView{Path: path, Kind: n.Kind.String(), Mode: n.Mode, Target: n.Target}
	if n.Kind == domain.KindFile {
		v.Size = n.Size
		v.Hash = n.Content.String()
	} else {
		v.Hash = n.Hash().String()
	}
	return v
}
