// Public API of volume/: reading and writing CT/label volumes, world geometry, preprocessing.
export type { Volume, VoxelArray, Vec3, Geometry, WorldBox, VoxelBox, BoxedVolume } from './types.ts';
export { boxedVolume, boxedAt, boxedOver, denseVolume, emptyBoxed, hullBox, mergeBoxedMax } from './boxed.ts';
export { boxedMask, quantizedProbabilities, PROBABILITY_SLOPE } from './boxed.ts';
export { readVolume, writeNifti, writeVolume, setMaxVoxels, maxVoxels, type ReadOptions } from './io.ts';
export { DEFAULT_MAX_VOXELS, gunzipHead } from './nifti.ts';
// itk-wasm's image form (LPS), for the atlas registration in anatomy/
export { toItkImage, fromItkImage } from './io.ts';
export {
  geometryOf, sameGrid, voxelCount, indexToWorld, worldToIndex, indexToWorldMatrix, voxelOffset, voxelAt, insideGrid,
  orientationCode, axisMapping, voxelBoxToWorld, worldBoxToVoxel, worldBounds,
} from './geometry.ts';
export { resample, resampleToGrid, spacingGrid, permuteAxes, type InterpMode, type ResampleOptions } from './resample.ts';
export {
  reorient, valueRange, scaleIntensity, extractRegion, cropOrPad, cropToWorldBox,
  maskBoundingBox, maskWorldBox, worldBoxToMask, voxelBoxToMask, voxelBoxSize,
} from './transforms.ts';
export { scanDicomFolder, chooseSeries, checkSliceStack, type DicomSeries } from './dicom.ts';
