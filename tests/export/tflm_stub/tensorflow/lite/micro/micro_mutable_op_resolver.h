// Test stub (see tests/export/tflm_stub/README.md): declarations with the names and signatures
// of tensorflow/lite/micro/micro_mutable_op_resolver.h, enough to type-check generated code.
#ifndef CONVZOO_TEST_STUB_MICRO_MUTABLE_OP_RESOLVER_H_
#define CONVZOO_TEST_STUB_MICRO_MUTABLE_OP_RESOLVER_H_

typedef enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;

namespace tflite {

class MicroOpResolver {
 public:
  virtual ~MicroOpResolver() {}
};

template <unsigned int tOpCount>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
  TfLiteStatus AddAdd();
  TfLiteStatus AddAveragePool2D();
  TfLiteStatus AddConcatenation();
  TfLiteStatus AddConv2D();
  TfLiteStatus AddDepthToSpace();
  TfLiteStatus AddDepthwiseConv2D();
  TfLiteStatus AddFullyConnected();
  TfLiteStatus AddLogistic();
  TfLiteStatus AddMaxPool2D();
  TfLiteStatus AddMean();
  TfLiteStatus AddMul();
  TfLiteStatus AddPack();
  TfLiteStatus AddPad();
  TfLiteStatus AddPadV2();
  TfLiteStatus AddRelu();
  TfLiteStatus AddReshape();
  TfLiteStatus AddSoftmax();
  TfLiteStatus AddSpaceToDepth();
  TfLiteStatus AddStridedSlice();
  TfLiteStatus AddTanh();
};

}  // namespace tflite

#endif  // CONVZOO_TEST_STUB_MICRO_MUTABLE_OP_RESOLVER_H_
