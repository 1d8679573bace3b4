// SyncNode: the node runtime (in progress).
