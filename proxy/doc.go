// Package proxy is the HTTP edge of avatarproxy: it parses and authenticates
// /avatar requests, answers memory hits with no image work (on fasthttp
// directly, ahead of the fiber routes that serve everything else), and on a miss runs
// the pipeline (resolve -> download -> resize) that fills the caches, with
// placeholders whenever there is no avatar to show. It declares the small
// interfaces it needs from the gateway, CDN and durable tier, and maps every
// failure to a fixed public answer in one place.
package proxy
