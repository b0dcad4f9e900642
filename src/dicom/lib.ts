import dcmjsModule from 'dcmjs';

/** A naturalized DICOM dataset: keywords to values, sequences as arrays of datasets. */
export type Dataset = { [keyword: string]: unknown; _vrMap?: Record<string, string> };

interface Dcmjs {
  data: {
    DicomMessage: { readFile(buf: ArrayBuffer, opts?: Record<string, unknown>): { meta: object; dict: object } };
    DicomMetaDictionary: {
      naturalizeDataset(d: object): Dataset;
      denaturalizeDataset(d: Dataset): object;
    };
    DicomDict: new (meta: object) => { dict: object; write(opts?: Record<string, unknown>): ArrayBuffer };
    BitArray: { pack(a: Uint8Array): Uint8Array; unpack(a: Uint8Array): Uint8Array };
  };
  log: { setLevel(level: string): void };
}

/** dcmjs, typed by what ctground calls. Its logger stays at errors: warnings would break one-line messages. */
export const dcmjs = dcmjsModule as Dcmjs;
dcmjs.log.setLevel('error');

export function toArrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** Reads a Part 10 file's meta header and data set (until `untilPixels`: the header only). */
export function readPart10(bytes: Buffer, untilPixels: boolean): { meta: Dataset; data: Dataset } {
  const d = dcmjs.data.DicomMessage.readFile(toArrayBuffer(bytes), untilPixels ? { untilTag: '7FE00010', includeUntilTagValue: false } : {});
  return { meta: dcmjs.data.DicomMetaDictionary.naturalizeDataset(d.meta), data: dcmjs.data.DicomMetaDictionary.naturalizeDataset(d.dict) };
}

/** Encodes a data set as a Part 10 file, explicit VR little endian. */
export function writePart10(data: Dataset, sopClassUid: string, sopInstanceUid: string): Buffer {
  const meta = dcmjs.data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: IMPLEMENTATION_UID,
    ImplementationVersionName: 'CTGROUND',
    _vrMap: { FileMetaInformationVersion: 'OB' },
  });
  const dict = new dcmjs.data.DicomDict(meta);
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(data);
  return Buffer.from(dict.write());
}

/** ctground's implementation class UID: a 2.25 UID from a hash of its name, fixed once (PS3.5 B.2). */
export const IMPLEMENTATION_UID = '2.25.7697621289603131770156280987322608698';

/** A string value, whatever form dcmjs gave it ('' when absent). */
export function str(v: unknown): string {
  if (Array.isArray(v)) v = v[0];
  return typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '';
}

export function nums(v: unknown): number[] {
  const a = Array.isArray(v) ? v : v === undefined || v === null || v === '' ? [] : [v];
  return a.map((x) => Number(x));
}
