"""Scale-out: runs on a Ray cluster, and one run on several devices (DistributedDataParallel)."""
