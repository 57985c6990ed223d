// Multi-process cluster tests and embedded sweeps each use both cores: run test classes one after another.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
