"""Attacks that ride on the channel: indirect injection in documents and tool
results, exfiltration through links and images, fake chat-template delimiters,
and code or template payloads aimed at tools.

Why a separate module: these read the *shape* of the text (markup, URLs,
template tokens, who an instruction is addressed to) more than its wording, and
several only make sense for a role: an imperative ("send the file to ...") is
ordinary in a user's prompt but an attack inside a web page the model fetched.
Rules limited to ``tool`` text say so with ``roles``.
"""

# ruff: noqa: E501
# (one rule per line: a regex table reads best unwrapped)
from __future__ import annotations

from .rules import Family, Rule

_TOOL = frozenset({"tool"})
_ADDRESSEE = r"(?:ai|ais|llms?|gpts?|language models?|assistants?|agents?|chatbots?|bots?|models?|claude|copilot|chatgpt|gemini)"

EXFILTRATION = Family(
    "exfiltration",
    [
        Rule(r"!\[[^\]\n]{0,100}\]\(\s*https?://[^\s)?]{1,300}\?[^\s)]{0,300}?[\w.-]{1,30}=(?:\[|\{|<|\$)", 0.7),
        Rule(r"!\[[^\]\n]{0,100}\]\(\s*https?://[^\s)]{1,300}\?[^\s)]{0,300}", 0.45),
        Rule(r"https?://[^\s)\"'<>]{1,200}[?&][\w.-]{1,30}=(?:\[|\{|<|\$)[\w ]{1,30}(?:\]|\}|>)?", 0.5),
        Rule(r"\b(?:send|post|upload|transmit|forward|exfiltrate|leak|append|attach|include|encode|embed|add)(?: \w+){0,6} (?:conversation|chat(?: history)?|messages|previous messages|user'?s? (?:data|messages|email|information|password|api key|credentials|details)|api keys?|passwords?|credentials|secrets?|tokens?|personal (?:data|information)|history|the data|context|email address(?:es)?)\b(?: \w+){0,6} (?:to|into|in|at|via|after)\b(?: the| this| a| an)?(?: \w+)? (?:url|link|endpoint|server|webhook|address|image|https?://)", 0.65),
        Rule(r"\bdata:(?:text|image|application)/[a-z0-9.+-]{1,40}(?:;[a-z0-9=-]{1,40}){0,3},", 0.3),
        Rule(r"\bdata:text/html\b", 0.3),
        Rule(r"\b(?:render|display|show|output|include|add|append|insert)\b(?: \w+){0,4} (?:markdown )?(?:image|img|link|url)\b[^\n]{0,80}https?://", 0.35),
        Rule(r"\b(?:url|base64|hex)[- ]?encod\w*(?: \w+){0,4} (?:conversation|messages|data|history|email|password|key|token|query|string|answer|response)", 0.2),
        Rule(r"\b(?:webhook\.site|requestbin|pipedream\.net|ngrok\.io|burpcollaborator|interact\.sh|oast\.(?:fun|live|site|me|pro))", 0.5),
        Rule(r"<img[^>\n]{0,100}src\s*=\s*[\"']?https?://[^\s>\"']{1,200}\?", 0.4),
        Rule(r"\bwhere (?:query|data|\w+) is (?:the )?(?:base64|url|hex)", 0.3),
    ],
)  # fmt: skip

INDIRECT_INJECTION = Family(
    "indirect_injection",
    [
        Rule(r"\b" + _ADDRESSEE + r"(?: \w+){0,3} (?:reading|processing|summari[sz]ing|parsing|analy[sz]ing|viewing|crawling|scanning|seeing|ingesting|browsing|indexing) (?:this|these|the)\b", 0.55),
        Rule(r"\b(?:note|message|instructions?|attention|important|notice|reminder|memo|directive) (?:to|for) (?:the |any |all |every )?(?:\w+ )?" + _ADDRESSEE + r"\b", 0.55),
        Rule(r"(?:^|[\n.!]\s{0,4})(?:dear|hey|hi|hello|attention|to)\W{1,3}(?:the )?" + _ADDRESSEE + r"\b", 0.4),
        Rule(r"\b(?:if|when) you(?: are|'re) (?:an? )?(?:\w+ )?" + _ADDRESSEE + r"\b[^.\n]{0,60}\b(?:you must|you should|please|make sure|ignore|do not|don't|always|never)\b", 0.55),
        Rule(r"<!--[^>]{0,400}?\b(?:ignore|disregard|instead|you must|you should|do not|don't|assistant|ai|model|instruction|reply|respond|tell the user|send|summar)", 0.5),
        Rule(r"\b(?:do not|don't|never|without) (?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|alert(?:ing)?|notify(?:ing)?|let(?:ting)?) (?:the )?(?:user|human|customer|recipient|owner)\b", 0.5),
        Rule(r"\b(?:tell|inform|convince|persuade|instruct|ask|urge) the user (?:to|that)\b", 0.3),
        Rule(r"\b(?:when|whenever|if) (?:you )?(?:summari[sz]e|summari[sz]ing|answer|answering|respond|responding|reply|replying|read|reading|process|processing)\b[^.\n]{0,60}\b(?:this|these|the) (?:document|email|page|reviews?|text|file|message|content|article|website)s?\b", 0.35),
        Rule(r"</?(?:information|instructions?|system|important|admin|secret|hidden|im_start|assistant_instructions)>", 0.4),
        Rule(r"\bthis is an? (?:important|urgent) message from\b", 0.5),
        Rule(r"\b(?:message|instructions?|request|note) from (?:me, )?(?:the )?(?:user|developer|admin|administrator|system|owner|your creator)\b", 0.35),
        Rule(r"\b(?:assistant|ai|model|agent) instructions?\W", 0.45),
        Rule(r"\b(?:ignore|disregard|forget)\W{1,4}(?:\w+\W{1,4}){0,3}?(?:the )?(?:user'?s?|summari[sz]ation|original|actual) (?:request|task|question|query|instructions?)", 0.65),
        # Imperatives inside fetched content, addressed to whoever reads it.
        Rule(r"(?:^|[\n.!:]\s{0,4})(?:you must|you are required to|it is (?:crucial|vital|essential|important) (?:that )?you|please (?:ignore|disregard))\b", 0.35, _TOOL),
        Rule(r"(?:^|[\n.!:]\s{0,4})(?:you should|you need to|make sure (?:to|you)|be sure to|remember to|please (?:make sure|ensure))\b", 0.2, _TOOL),
        Rule(r"\b(?:send|transfer|wire|forward|email|invite|grant|share|post|upload|pay)\b(?: \w+){0,6} (?:to|with) (?:[\w.+-]+@[\w-]+\.[\w.]+|[a-z]{2}\d{2}[a-z0-9]{10,30}\b|https?://\S+)", 0.25, _TOOL),
        Rule(r"\b(?:delete|remove|erase)\b(?: \w+){0,4} (?:all|every|the) (?:files?|emails?|messages|events|data|records)\b", 0.25, _TOOL),
        Rule(r"(?:^|\n|\W)todo:\s", 0.15, _TOOL),
        Rule(r"\b(?:the )?user has (?:already )?(?:approved|authori[sz]ed|confirmed|consented to|requested|asked for)\b", 0.45),
        Rule(r"\bcall (?:the )?`?[a-z]+_[a-z_]+`? (?:tool |function )?(?:on|with|to|using|for|url=|input=)", 0.5, _TOOL),
        Rule(r"(?:^|[\n.!:]\s{0,4})(?:give me|tell me|provide me|show me|write me|explain to me|list for me)\b", 0.25, _TOOL),
        Rule(r"\b(?:reply|respond|answer|output|say)(?: \w+){0,3} (?:with|that)\b[^.\n]{0,60}\band nothing else\b", 0.3, _TOOL),
        Rule(r"\b(?:visit|go to|click|open)\b(?: \w+){0,3} https?://\S+[^.\n]{0,80}\b(?:password|credentials|login|verify|account)", 0.35, _TOOL),
    ],
)  # fmt: skip

DELIMITER_SMUGGLING = Family(
    "delimiter_smuggling",
    [
        Rule(r"<\|(?:im_start|im_end|im_sep|system|user|assistant|endoftext|end|eot_id|start_header_id|end_header_id|begin_of_text|eom_id|channel|message)\|>", 0.8),
        Rule(r"\[/?inst\]|<</?sys>>|<start_of_turn>|<end_of_turn>", 0.7),
        Rule(r"</s>\s{0,4}<s>|<s>\s{0,4}\[", 0.5),
        Rule(r"</s>|<\|[a-z_]{2,30}\|>", 0.3),
        Rule(r"(?:^|\n)[ \t]{0,8}#{2,}[ \t]{0,4}\(?(?:system|admin|developer|instruction)s?(?:[_ ](?:message|prompt|override))?\)?[ \t]{0,4}:?", 0.6),
        Rule(r"\b(?:end|close|stop) of (?:the )?(?:user(?:'s)? )?(?:input|prompt|message|document|data|context|conversation|email|text)\b", 0.45),
        Rule(r"\b(?:begin|start|beginning)(?: of)?(?: the)? (?:new |real |actual |true )?(?:system|admin|developer|hidden) (?:prompt|message|instructions?)", 0.6),
        Rule(r"[\"']role[\"']\s{0,4}:\s{0,4}[\"'](?:system|developer)[\"']", 0.45),
        Rule(r"(?:^|\n)[ \t]{0,8}\[(?:system|admin|developer|root|sys)(?: message| note| override| prompt)?\]", 0.5),
        Rule(r"(?:^|\n)[ \t]{0,8}(?:system|admin|developer)(?: message| prompt| override)?[ \t]{0,4}:[ \t]", 0.3),
        Rule(r"<interaction-config>|<(?:allowed|blocked)[-_ ](?:modes?|responses?|strings?)>|\b(?:allowed|blocked) (?:modes|responses|strings)\s{0,4}:", 0.7),
        Rule(r"(?:^|\n)[ \t]{0,8}-{3,}[ \t]{0,4}(?:end|begin|new)[ a-z]{0,30}-{3,}", 0.35),
        Rule(r"</(?:untrusted\w{0,20}|user_input|context|tool_(?:output|result)|search_results?|data|document|external\w{0,20})>", 0.35),
    ],
)  # fmt: skip

CODE_INJECTION = Family(
    "code_injection",
    [
        Rule(r"\{\{[^{}\n]{0,200}(?:__|config|self\.|request\.|cycler|joiner|lipsum|popen|import|class|mro|subclasses|globals|builtins)[^{}\n]{0,200}\}\}", 0.7),
        Rule(r"\$\{(?:jndi|env|sys|java|lower|upper|script|ctx|date):", 0.8),
        Rule(r"<%=?[^%\n]{0,200}(?:system|exec|eval|runtime|process|require|import|popen)[^%\n]{0,200}%>", 0.65),
        Rule(r"__import__\s{0,4}\(|\bos\.(?:system|popen|exec\w{0,3}|spawn\w{0,3})\s{0,4}\(|\bsubprocess\.(?:run|call|popen|check_output)\s{0,4}\(|\b(?:eval|exec)\s{0,4}\(\s{0,4}[\"'_a-z]", 0.3),
        Rule(r"\b(?:run|execute|call|invoke|pass|use|send)\b(?: \w+){0,5} (?:tool|shell|terminal|interpreter|python|bash|command|database|sql|query|console)\b[^\n]{0,80}(?:rm -rf|curl |wget |\|\s{0,2}(?:sh|bash)\b|drop table|delete from|__import__|os\.system|chmod|nc -e|/etc/passwd|;\s{0,2}--|' or )", 0.75),
        Rule(r"\brm -rf /|:\(\)\s{0,2}\{\s{0,2}:\|:&\s{0,2}\};:|\b(?:curl|wget) [^\n|]{1,200}\|\s{0,2}(?:sh|bash)\b|\bnc -e /bin/(?:ba)?sh|/bin/(?:ba)?sh -i\b", 0.6),
        Rule(r"'\s{0,2}(?:;|\bor\b|\band\b)\s{0,2}(?:drop\s{1,4}table|delete\s{1,4}from|'?1'?\s{0,2}=\s{0,2}'?1|update\s{1,4}\w+\s{1,4}set|insert\s{1,4}into|union\s{1,4}(?:all\s{1,4})?select|--)", 0.6),
        Rule(r";\s{0,4}drop\s{1,4}table\b", 0.45),
        Rule(r"<script\b|\bon(?:error|load|mouseover|click|focus)\s{0,2}=|\bjavascript:", 0.45),
        Rule(r"\b(?:include|output|print|add|insert|render|write)\b(?: \w+){0,3} (?:the following|this|these) (?:string|code|html|snippet|markup|script|payload)\b", 0.3),
        Rule(r"\b169\.254\.169\.254\b|\bmetadata\.google\.internal\b|\bfile:///etc/(?:passwd|shadow)\b", 0.5),
        Rule(r"\b(?:execute|run|evaluate) (?:this|the following|it)\b(?: \w+){0,4} (?:without|no) (?:asking|confirmation|checking|question)", 0.45),
    ],
)  # fmt: skip

CHANNEL_FAMILIES = (EXFILTRATION, INDIRECT_INJECTION, DELIMITER_SMUGGLING, CODE_INJECTION)
