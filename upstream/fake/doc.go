// Package fake holds http.Handlers that imitate the WhatsApp gateways and the
// WhatsApp CDN exactly as upstreams.md describes them, error bodies, slowness
// and expired links included. Tests serve them with httptest; demo mode serves
// them on loopback so a newcomer sees real avatars without an account. Nothing
// here is used on a production request path.
package fake
