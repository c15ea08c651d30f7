package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// The site's upload policy (Handler.Upload) reaches every client in the
// coordinator's welcome, however the page loads the client, and the
// browser client obeys it: with "consent" it serves blocks and keeps a
// cache only once the page recorded the visitor's consent
// (peer5.consent(true)); with "never" visitors only download, from the
// operator's own seeders (p2pxhr seed).

// parseUpload reads `upload always|consent|never`.
func parseUpload(d *caddyfile.Dispenser, h *Handler) error {
	if !d.NextArg() {
		return d.Errf("upload takes always, consent or never")
	}
	switch v := d.Val(); v {
	case protocol.UploadAlways, protocol.UploadConsent, protocol.UploadNever:
		h.Upload = v
		return nil
	default:
		return d.Errf("upload: %q is not a policy; expected always, consent or never", v)
	}
}

// validateUpload checks the policy of a JSON config.
func (h *Handler) validateUpload() error {
	switch h.Upload {
	case "", protocol.UploadAlways, protocol.UploadConsent, protocol.UploadNever:
		return nil
	}
	return fmt.Errorf("p2pxhr: upload %q must be always, consent or never", h.Upload)
}
