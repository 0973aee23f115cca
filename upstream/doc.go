// Package upstream asks WhatsApp gateways where a chat's avatar lives and
// downloads it from the WhatsApp CDN. It owns the gateway contracts (Green API
// first, then GOWA, WAHA and Evolution API), the chat-id grammar, and the
// SSRF-safe CDN fetch; it knows nothing of HTTP serving, caching or images.
package upstream
