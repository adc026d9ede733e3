// libtorch's oneDNN linear over a weight reordered once into oneDNN's blocked layout (the
// ops torch.compile's CPU freezing pass uses). A plain bf16 or f32 linear reorders its weight
// at every call; decoding at batch 1 spent half its matmul time there. tch does not bind these
// ops (libtorch registers them at load time, outside native_functions.yaml), so they are
// reached through the dispatcher by name. Every C++ exception is caught here: an error comes
// back as a message for Rust, never as an exception across the boundary.
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/ivalue.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace {

char* message(const char* what) {
  const size_t n = std::strlen(what);
  char* out = static_cast<char*>(std::malloc(n + 1));
  if (out != nullptr) std::memcpy(out, what, n + 1);
  return out;
}

c10::OperatorHandle find(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

}  // namespace

extern "C" {

// `mkldnn::_reorder_linear_weight(weight)`: `weight` `[out, in]` in oneDNN's layout. Null on
// success, else a message to release with `vs_packed_free_message`.
char* vs_packed_linear_weight(const at::Tensor* weight, at::Tensor** out) {
  try {
    static const c10::OperatorHandle op = find("mkldnn::_reorder_linear_weight");
    std::vector<c10::IValue> stack{c10::IValue(*weight), c10::IValue()};
    op.callBoxed(&stack);
    *out = new at::Tensor(stack.at(0).toTensor());
    return nullptr;
  } catch (const std::exception& e) {
    return message(e.what());
  }
}

// `mkldnn::_linear_pointwise(x, packed, bias, "none")`: `x @ weight^T + bias` over the last
// dimension of `x`. `bias` may be null.
char* vs_packed_linear(const at::Tensor* x, const at::Tensor* packed, const at::Tensor* bias, at::Tensor** out) {
  try {
    static const c10::OperatorHandle op = find("mkldnn::_linear_pointwise");
    std::vector<c10::IValue> stack;
    stack.reserve(6);
    stack.emplace_back(*x);
    stack.emplace_back(*packed);
    stack.emplace_back(bias == nullptr ? c10::IValue() : c10::IValue(*bias));
    stack.emplace_back(std::string("none"));
    stack.emplace_back(c10::List<std::optional<at::Scalar>>());
    stack.emplace_back(c10::IValue());
    op.callBoxed(&stack);
    *out = new at::Tensor(stack.at(0).toTensor());
    return nullptr;
  } catch (const std::exception& e) {
    return message(e.what());
  }
}

void vs_packed_free_message(char* message) { std::free(message); }

}  // extern "C"
