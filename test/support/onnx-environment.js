/**
 * Jest environment for tests that call onnxruntime-node. Jest runs each test file in its own vm
 * context with its own typed-array constructors, while the native addon creates its output
 * tensors' arrays in Node's main context; onnxruntime-common's `instanceof Float32Array` check then
 * rejects them ("A float32 tensor's data must be type of function Float32Array()"). This
 * environment gives the test context the main context's typed-array constructors.
 */
const { TestEnvironment } = require('jest-environment-node');

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of [
      'Float32Array',
      'Float64Array',
      'Int8Array',
      'Uint8Array',
      'Int16Array',
      'Uint16Array',
      'Int32Array',
      'Uint32Array',
      'BigInt64Array',
      'BigUint64Array',
    ]) {
      this.global[name] = globalThis[name];
    }
  }
}

module.exports = OnnxEnvironment;
