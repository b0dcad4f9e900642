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

// A PACS (or something posing as one) that never stops sending: the client refuses the answer
// once it passes the cap, and stops reading, instead of buffering it all.
test('DICOMweb answers over maxAnswerBytes are refused in one line, chunked or with a Content-Length', async () => {
  let sentChunked = 0;
  const srv = createServer((req, res) => {
    if (req.url?.includes('/declared/')) {
      res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary=x', 'content-length': String(8 << 20) });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/dicom+json' });
    const chunk = Buffer.alloc(64 << 10, 0x20);
    const pump = () => {
      while (!res.destroyed && sentChunked < (256 << 20)) {
        sentChunked += chunk.length;
        if (!res.write(chunk)) { res.once('drain', pump); return; }
      }
      res.end();
    };
    res.on('close', () => undefined);
    pump();
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  try {
    const port = (srv.address() as AddressInfo).port;
    const c = new DicomwebClient(`http://127.0.0.1:${port}/dicom-web`, { maxAnswerBytes: 1 << 20 });
    await assert.rejects(c.searchStudies({}), (e: Error) => {
      assert.ok(e instanceof UserError, e.message);
      assert.equal(e.message, 'PACS study search: answer is over the 1048576-byte limit for one answer');
      return true;
    });
    // the client stopped reading: far less than the server's 256 MB went out
    assert.ok(sentChunked < (64 << 20), `server sent ${sentChunked} bytes before the client stopped`);
    const d = new DicomwebClient(`http://127.0.0.1:${port}/declared`, { maxAnswerBytes: 1 << 20 });
    await assert.rejects(d.retrieveInstance('1.2.3', '1.2.3.4', '1.2.3.4.5'), /PACS retrieve of an instance of study 1\.2\.3: answer is over the 1048576-byte limit/);
  } finally {
    srv.closeAllConnections();
    srv.close();
  }
});
