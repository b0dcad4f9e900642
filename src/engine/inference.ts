/**
 * Inference-only models: the forward graph for chosen outputs with the current weights baked in
 * as initializers and dropout as identity. The same bytes can be written out as a standalone
 * .onnx file.
 */
import { writeFileAtomic } from '../common/index.ts';
import type { Graph, Tensor, TypedData } from './graph.ts';
import { emitModel } from './onnx.ts';
import { createSession, ort, toOrt, type FeedValue, type SessionOptions } from './session.ts';

export class InferenceModel {
  private constructor(private readonly session: ort.InferenceSession, private readonly inputs: Tensor[], readonly outputNames: string[]) {}

  static async create(graph: Graph, outputs: Record<string, Tensor>, opts: SessionOptions = {}): Promise<InferenceModel> {
    const { bytes, inputs } = emitModel(graph, { outputs: new Map(Object.entries(outputs)), mode: 'infer', name: 'inference' });
    return new InferenceModel(await createSession(bytes, opts), inputs, Object.keys(outputs));
  }

  async run(feeds: Record<string, FeedValue>): Promise<Record<string, TypedData>> {
    const f: Record<string, ort.Tensor> = {};
    for (const t of this.inputs) {
      const v = feeds[t.name];
      if (v === undefined) throw new Error(`run: missing input '${t.name}'`);
      f[t.name] = toOrt(t, v);
    }
    const res = await this.session.run(f);
    const out: Record<string, TypedData> = {};
    for (const k of this.outputNames) out[k] = res[k]!.data as TypedData;
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** A standalone ONNX model (weights inside) computing `outputs` from the graph's inputs. */
export function exportOnnx(graph: Graph, outputs: Record<string, Tensor>): Uint8Array {
  return emitModel(graph, { outputs: new Map(Object.entries(outputs)), mode: 'infer', name: 'inference' }).bytes;
}

export function writeOnnx(path: string, graph: Graph, outputs: Record<string, Tensor>): void {
  writeFileAtomic(path, exportOnnx(graph, outputs));
}
