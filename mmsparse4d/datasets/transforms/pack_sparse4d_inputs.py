"""Pack a sample into what the model consumes."""

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet3d.structures import Det3DDataSample
from mmengine.structures import InstanceData

from ...registry import TRANSFORMS

META_KEYS = (
    'token',
    'scene_name',
    'frame_idx',
    'timestamp',
    'origin',
    'cam_names',
    'img_aug_matrix',
    'rotation_3d',
    'world_to_camera',
    'intrinsic',
)


def channel_planes(images: list[np.ndarray]) -> np.ndarray:
    """[H, W, C] images of one size -> one [N, C, H, W] array. OpenCV splits each image into
    its planes about three times as fast as numpy copies the transposed stack."""
    sizes = {image.shape for image in images}
    if len(sizes) != 1:
        raise ValueError(
            f"PackSparse4DInputs: the cameras' images differ in size, {sorted(sizes)} (with "
            "MultiViewImageAugmentation(warp_images='device') they must share one)"
        )
    planar = np.empty((len(images), images[0].shape[2], *images[0].shape[:2]), images[0].dtype)
    for index, image in enumerate(images):
        planar[index] = cv2.split(image)
    return planar


@TRANSFORMS.register_module()
class PackSparse4DInputs(BaseTransform):
    """``inputs``: ``img`` uint8 [N, 3, H, W] (normalised on the device by the data
    preprocessor), ``projection_mat`` float32 [N, 4, 4] (world, or group frame, to image,
    augmentation included), ``image_wh`` float32 [N, 2], ``timestamp`` float64 seconds,
    ``focal`` float32 [N] (the horizontal focal length in pixels after augmentation, for the
    depth branch) and, when present, ``depth_targets`` (per stride [N, h, w]),
    ``image_warp`` [N, 2, 3] and ``colour_distortion`` [N, 4] (the images' warp and colour
    changes, left to the device).

    ``data_samples``: a ``Det3DDataSample`` whose ``gt_instances_3d`` holds ``bboxes_3d``
    [M, 7] (x, y, z, w, l, h, yaw in the group frame), ``labels_3d``, ``velocities`` [M, 3],
    ``instance_ids``, ``asset_ids`` and ``visibility`` [M, N]; its metainfo holds the group
    ``origin`` to go back to world coordinates, the camera names and the token.
    """

    def transform(self, results: dict) -> dict:
        inputs = {
            'img': torch.from_numpy(channel_planes(results['img'])),
            'projection_mat': torch.from_numpy(results['projection'].astype(np.float32)),
            'image_wh': torch.from_numpy(results['image_wh'].astype(np.float32)),
            'timestamp': torch.tensor(results['timestamp'], dtype=torch.float64),
        }
        if 'intrinsic' in results:
            # Augmentation scales (and slightly rotates) the image: fx' = |A[:2, :2] e_x| fx.
            aug = np.asarray(results['img_aug_matrix'])[:, :2, :2]
            fx = np.asarray(results['intrinsic'])[:, 0, 0]
            inputs['focal'] = torch.from_numpy(
                (np.linalg.norm(aug[:, :, 0], axis=-1) * fx).astype(np.float32)
            )
        if 'image_warp' in results:  # the images are warped on the device
            inputs['image_warp'] = torch.from_numpy(results['image_warp'].astype(np.float32))
        if 'colour_distortion' in results:  # and their colours distorted there
            inputs['colour_distortion'] = torch.from_numpy(
                results['colour_distortion'].astype(np.float32)
            )
        if 'depth_targets' in results:
            inputs['depth_targets'] = [torch.from_numpy(t) for t in results['depth_targets']]
        sample = Det3DDataSample()
        sample.set_metainfo({key: results[key] for key in META_KEYS if key in results})
        if 'gt_bboxes_3d' in results:
            gt = InstanceData()
            gt.bboxes_3d = torch.from_numpy(results['gt_bboxes_3d'].astype(np.float32))
            gt.labels_3d = torch.from_numpy(results['gt_labels_3d'])
            gt.velocities = torch.from_numpy(results['gt_velocity'].astype(np.float32))
            gt.instance_ids = torch.from_numpy(results['instance_ids'])
            gt.asset_ids = torch.from_numpy(results['asset_ids'])
            gt.visibility = torch.from_numpy(results['gt_visibility'])
            sample.gt_instances_3d = gt
        return {'inputs': inputs, 'data_samples': sample}
