import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '../src/common/index.ts';
import { DicomwebClient } from '../src/dicom/index.ts';

// The DICOMweb client against a local server that answers wrongly (no PACS needed): every such
// answer is the study's one-line UserError naming the request, never a bare Error.
test('DICOMweb retrieve: an answer that is not multipart/related is one line naming the request', async () => {
  const answers: [string | undefined, string][] = [['application/dicom', 'DICM'], ['text/html', '<html>login</html>'], ['multipart/related; type="application/dicom"', '--x--'], [undefined, '']];
  let next = 0;
  const srv = createServer((_, res) => {
    const [type, body] = answers[next++]!;
    res.writeHead(200, type ? { 'content-type': type } : {});
    res.end(body);
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  try {
    const c = new DicomwebClient(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/dicom-web`);
    for (const [type] of answers) {
      await assert.rejects(c.retrieveInstance('1.2.3', '1.2.3.4', '1.2.3.4.5'), (e: Error) => {
        assert.ok(e instanceof UserError, `${type}: ${e.name}: ${e.message}`);
        assert.equal(e.message, `PACS retrieve of an instance of study 1.2.3: answer is not multipart/related with a boundary (Content-Type ${type ?? 'missing'})`);
        return true;
      });
    }
  } finally {
    srv.close();
  }
});
