# Runtime defaults shared by every lmtk training config (mmengine names for hooks and the visualizer).
default_scope = None

default_hooks = dict(
    # log values copied from the device once per logger interval, not with a host sync every iteration
    runtime_info=dict(type="DeferredRuntimeInfoHook"),
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    # written atomically; dropped checkpoints are removed only once the new one is in place
    checkpoint=dict(
        type="AtomicCheckpointHook", interval=5000, by_epoch=False, max_keep_ckpts=3, save_last=True
    ),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
custom_hooks = [
    dict(type="SampleGridHook", interval=5000, num_samples=4),
    dict(type="RNGStateHook"),
]

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    # nccl on GPUs; tools/train.py falls back to gloo when CUDA is unavailable
    dist_cfg=dict(backend="nccl"),
)
# GAN training: generator and discriminator are wrapped in separate DDPs
model_wrapper_cfg = dict(
    type="MMSeparateDistributedDataParallel", broadcast_buffers=False, find_unused_parameters=False
)

vis_backends = [dict(type="LocalVisBackend")]
visualizer = dict(type="Visualizer", vis_backends=vis_backends, name="visualizer")
log_processor = dict(by_epoch=False, window_size=50)
log_level = "INFO"
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
