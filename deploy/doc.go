// Package deploy holds the fleet recipes, not code: compose.yaml (two
// replicas sharing a MinIO bucket behind nginx), nginx.conf (consistent
// hashing of each chat to one replica) and kubernetes.yaml. Its tests check
// them: nginx -t and a run of nginx in front of two fake replicas, and the
// structure, secrets and settings of the compose and Kubernetes files.
package deploy
