// bench/ort_model.js: ONNX Runtime (onnxruntime-node, CPU) on any ONNX model,
// timed as bench_graph times bottleneck: same batch, threads and random inputs.
//
//   NODE_PATH=DIR/node_modules node bench/ort_model.js MODEL.onnx SIZE [batch=8] [reps=5] [threads=2]
//
// onnxruntime-node is the one ../shared/bench/peers.sh installs (its work
// directory's ort/node_modules); bench/run.sh sets NODE_PATH. Prints
//   RESULT runtime=onnxruntime-node model=... batch=... img_s_median=... img_s_best=...
const ort = require('onnxruntime-node');
(async () => {
  const [model, sizeS, bS = '8', repsS = '5', thS = '2'] = process.argv.slice(2);
  const size = +sizeS, b = +bS, reps = +repsS, threads = +thS;
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  let seed = 12345;
  const data = new Float32Array(b * 3 * size * size);
  for (let i = 0; i < data.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    data[i] = seed / 4294967296 * 240 - 120;
  }
  const feeds = { [sess.inputNames[0]]: new ort.Tensor('float32', data, [b, 3, size, size]) };
  for (let i = 0; i < 2; i++) await sess.run(feeds);
  const ts = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    await sess.run(feeds);
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  ts.sort((x, y) => x - y);
  const med = ts[Math.floor(reps / 2)], mn = ts[0];
  const name = model.split('/').pop();
  const ver = require('onnxruntime-node/package.json').version;
  console.log(`RESULT runtime=onnxruntime-node version=${ver} model=${name} batch=${b} threads=${threads} ` +
    `reps=${reps} s_median=${med.toFixed(4)} s_min=${mn.toFixed(4)} img_s_median=${(b / med).toFixed(3)} ` +
    `img_s_best=${(b / mn).toFixed(3)}`);
})();
