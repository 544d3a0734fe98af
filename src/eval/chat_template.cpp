#include "eval/chat_template.h"

#include "common/error.h"

namespace quarot {

std::string apply_chat_template(const std::string& t, const std::string& user) {
  if (t.empty()) fail("this model has no chat template");
  if (t.find("<|im_start|>") != std::string::npos) {
    // Templates such as SmolLM2's insert a default system turn when none is given;
    // it is a literal inside the template, so take it from there.
    std::string system;
    const std::string open = "<|im_start|>system\\n";
    const size_t at = t.find(open);
    if (at != std::string::npos) {
      const size_t begin = at + open.size();
      const size_t end = t.find("<|im_end|>", begin);
      if (end != std::string::npos && t.find('{', begin) > end)
        system = "<|im_start|>system\n" + t.substr(begin, end - begin) + "<|im_end|>\n";
    }
    return system + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
  }
  if (t.find("<|start_header_id|>") != std::string::npos)
    return "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + user +
           "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
  if (t.find("[INST]") != std::string::npos) return "<s>[INST] " + user + " [/INST]";
  fail("unrecognised chat template (supported: ChatML, Llama 3, Llama 2)");
}

}  // namespace quarot
