package config

import "errors"

// ValidateMeshServing checks what a node replica needs of s.Mesh to serve it: the
// mesh's own backends (named apart from s.Backends), and Services with names, valid
// and unshared cluster IPs, distinct ports from 1 to 65535, and routes and port
// backends that refer only to backends of s.Backends or Mesh.Backends. It applies the
// same rules as Validate does to the mesh, without checking s.Backends or
// s.Listeners again. A nil Mesh is valid.
func (s *Snapshot) ValidateMeshServing() error {
	if s.Mesh == nil {
		return nil
	}
	v := &validator{backends: make(map[string]bool, len(s.Backends)+len(s.Mesh.Backends))}
	for i := range s.Backends {
		v.backends[s.Backends[i].Name] = true
	}
	v.mesh(s.Mesh)
	return errors.Join(v.errs...)
}
