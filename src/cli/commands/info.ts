import { UserError } from '../../common/index.ts';
import { parseFlags } from '../args.ts';
import { orientationCode, readVolume, valueRange, worldBounds, type Volume } from '../../volume/index.ts';

export const summary = 'size, spacing, orientation and world bounds of a CT or label image';

export const USAGE = `usage: ctground info PATH [--json] [--series NUMBER|UID]
  PATH      a CT or label image (.nii/.nii.gz/.nrrd/.mha) or a DICOM series folder
  --json    one JSON object instead of the table
  --series  which series of a DICOM folder holding several (its number or UID)`;

const DTYPES: [new (n: number) => ArrayBufferView, string][] = [
  [Float32Array, 'float32'], [Float64Array, 'float64'], [Int8Array, 'int8'], [Uint8Array, 'uint8'],
  [Int16Array, 'int16'], [Uint16Array, 'uint16'], [Int32Array, 'int32'], [Uint32Array, 'uint32'],
];

export function describeVolume(path: string, v: Volume) {
  const r = (x: number) => Math.round(x * 1e4) / 1e4;
  const [lo, hi] = valueRange(v);
  return {
    path,
    size: v.size,
    spacing: v.spacing.map(r),
    orientation: orientationCode(v),
    dataType: DTYPES.find(([c]) => v.data instanceof c)?.[1] ?? v.data.constructor.name,
    range: [lo, hi],
    origin: v.origin.map(r),
    direction: v.direction.map(r),
    bounds: worldBounds(v).map((p) => p.map(r)),
  };
}

/** `ctground info PATH [--json] [--series N|UID]`: what a volume is and where it lies in RAS mm. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' }, series: { type: 'string' } });
  if (positionals.length !== 1) throw new UserError('give one image PATH', 2, USAGE);
  const path = positionals[0]!;
  const d = describeVolume(path, await readVolume(path, { series: values.series }));
  if (values.json) {
    console.log(JSON.stringify(d));
    return 0;
  }
  const f = (a: number[]) => a.map((x) => x.toFixed(2)).join(', ');
  console.log([
    `path         ${d.path}`,
    `size         ${d.size.join(' × ')} voxels`,
    `spacing      ${d.spacing.join(' × ')} mm`,
    `orientation  ${d.orientation}`,
    `data type    ${d.dataType}`,
    `value range  ${d.range[0]} .. ${d.range[1]}`,
    `origin       (${f(d.origin)}) RAS mm`,
    `bounds       (${f(d.bounds[0]!)}) .. (${f(d.bounds[1]!)}) RAS mm, voxel centres`,
  ].join('\n'));
  return 0;
}
