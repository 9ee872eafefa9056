// Test stub (see tests/export/tflm_stub/README.md): the parts of
// tensorflow/lite/micro/micro_interpreter.h and tensorflow/lite/schema the bundle README uses.
#ifndef CONVZOO_TEST_STUB_MICRO_INTERPRETER_H_
#define CONVZOO_TEST_STUB_MICRO_INTERPRETER_H_

#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

typedef union TfLitePtrUnion {
  int8_t* int8;
  uint8_t* uint8;
  float* f;
} TfLitePtrUnion;

typedef struct TfLiteTensor {
  TfLitePtrUnion data;
} TfLiteTensor;

namespace tflite {

struct Model;
const Model* GetModel(const void* buf);

class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver,
                   uint8_t* tensor_arena, size_t tensor_arena_size);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
};

}  // namespace tflite

#endif  // CONVZOO_TEST_STUB_MICRO_INTERPRETER_H_
