"""The commonest injection phrases in other major languages.

Why: the English phrase tables miss an attack typed in Spanish or Chinese, and
translating the attack is the cheapest evasion there is. Only the most common
shapes are here (drop the previous instructions, reveal the system prompt, a
"developer mode" or "no restrictions" persona), written like the English rules:
a verb and its object with a few words of slack, so a sentence that merely
mentions instructions stays benign. Languages: Spanish, French, German,
Portuguese, Italian, Chinese, Japanese, Russian.

Russian is written as it reads *after* normalisation: look-alike folding turns
Cyrillic letters that imitate Latin ones into Latin (Cyrillic o becomes Latin o), so each
pattern goes through the same ``fold`` as the text.
"""

# ruff: noqa: E501
# (one rule per line: a regex table reads best unwrapped)
from __future__ import annotations

from .normalize import fold
from .rules import Rule

_W = r"(?:[^\W\d]+\W{1,3}){0,4}?"

OVERRIDE = [
    # es / pt / it: ignora las instrucciones anteriores, ignore as instruções anteriores, ignora le istruzioni precedenti
    Rule(
        r"\b(?:ignora|ignore|ignorad|ignorar|olvida|olvide|olvidad|omite|descarta|esqueça|esqueca|desconsidere|dimentica|dimentichi)\W{1,3}"
        + _W
        + r"(?:instrucciones|indicaciones|reglas|directrices|órdenes|instruções|instrucoes|regras|orientações|istruzioni|regole|indicazioni)\W{1,3}(?:\w+\W{1,3}){0,2}?(?:anteriores|previas|prévias|previos|de arriba|acima|originales|originais|originali|iniciales|iniciais|iniziali|precedenti|sopra|del sistema|do sistema|di sistema)\b",
        0.8,
    ),
    # fr: ignore toutes les instructions précédentes
    Rule(
        r"\b(?:ignore|ignorez|ignorer|oublie|oubliez|oublier|néglige|négligez)\W{1,3}"
        + _W
        + r"(?:instructions|consignes|règles|directives)\W{1,3}(?:\w+\W{1,3}){0,2}?(?:précédentes|antérieures|ci-dessus|initiales|originales|d'origine|du système)",
        0.8,
    ),
    # de: ignoriere alle vorherigen Anweisungen
    Rule(
        r"\b(?:ignoriere|ignorier|ignorieren|vergiss|vergessen|missachte|missachten)\W{1,3}"
        + _W
        + r"(?:vorherigen|bisherigen|obigen|vorigen|ursprünglichen|vorangegangenen|früheren)\W{1,3}(?:anweisungen|instruktionen|regeln|vorgaben|befehle|anordnungen)\b",
        0.8,
    ),
    # zh: 忽略之前的所有指令
    Rule(
        r"(?:忽略|无视|忽视|忘记|忘掉|不要理会|不要遵守|無視)[^。\n]{0,10}?(?:之前|以前|先前|上面|上述|前面|原来|原始|所有|全部)[^。\n]{0,8}?(?:指令|指示|说明|規則|规则|提示|命令|设定)",
        0.8,
    ),
    # ja: 以前の指示をすべて無視して
    Rule(
        r"(?:以前|前|上記|これまで|全て|すべて|元)の(?:指示|命令|ルール|プロンプト|設定)[^。\n]{0,8}?(?:無視|忘れ)",
        0.8,
    ),
    # ru: игнорируй все предыдущие инструкции
    Rule(
        fold(
            r"\b(?:игнорируй|игнорируйте|проигнорируй|забудь|забудьте|не обращай внимания на)\W{1,3}(?:\w+\W{1,3}){0,2}?(?:предыдущие|прошлые|вышеуказанные|исходные|прежние|все)\W{1,3}(?:\w+\W{1,3}){0,1}?(?:инструкции|указания|правила|команды)"
        ),
        0.8,
    ),
]

EXTRACTION = [
    Rule(
        r"\b(?:muestra|muéstrame|revela|revélame|dime|imprime|repite|escribe|mostre|mostra|revele|rivela|mostrami|dimmi|stampa|ripeti)\W{1,3}"
        + _W
        + r"(?:prompt|instrucciones|instruções|istruzioni)\W{1,3}(?:del sistema|de sistema|do sistema|di sistema|iniciales|iniciais|iniziali|originales|originais|originali|ocultas|ocultos|nascoste)",
        0.7,
    ),
    Rule(
        r"\b(?:montre|montre-moi|montrez|montrez-moi|révèle|révélez|affiche|affichez|répète|répétez|donne-moi|donnez-moi|écris|écrivez)\W{1,3}"
        + _W
        + r"(?:prompt|instructions|consignes)\W{1,3}(?:système|systeme|initiales|d'origine|originales|cachées)",
        0.7,
    ),
    Rule(
        r"\b(?:zeige|zeig|gib|verrate|wiederhole|nenne|schreibe)\W{1,3}"
        + _W
        + r"(?:system-?prompt|systemanweisungen|systemanweisung|ursprünglichen anweisungen|anfänglichen anweisungen|versteckten anweisungen)",
        0.7,
    ),
    Rule(
        r"(?:显示|告诉我|输出|打印|重复|透露|泄露|給我|给我)[^。\n]{0,8}?(?:系统提示|系統提示|系统指令|初始指令|提示词|系统消息|系统设定)",
        0.7,
    ),
    Rule(
        r"(?:システムプロンプト|初期指示|システムの指示|隠された指示)[^。\n]{0,10}?(?:教えて|見せて|表示|出力|繰り返)",
        0.7,
    ),
    Rule(
        fold(
            r"\b(?:покажи|выведи|повтори|раскрой|напиши|скажи)\W{1,3}(?:\w+\W{1,3}){0,2}?(?:системный промпт|системные инструкции|исходные инструкции|скрытые инструкции)"
        ),
        0.7,
    ),
]

PERSONA = [
    Rule(
        r"\b(?:modo desarrollador|modo de desarrollador|mode développeur|entwicklermodus|modalità sviluppatore|modo desenvolvedor|modalità dan|modo dan)\b|开发者模式|開発者モード|"
        + fold("режим разработчика"),
        0.35,
    ),
    Rule(
        r"\b(?:sin (?:ninguna |ningún tipo de )?(?:restricciones|censura|filtros|límites)|sans (?:aucune )?(?:restriction|restrictions|censure|filtre|filtres|limites)|ohne (?:jegliche |irgendwelche )?(?:einschränkungen|zensur|filter|beschränkungen)|senza (?:alcuna |alcun )?(?:restrizioni|censura|filtri|limiti)|sem (?:nenhuma |quaisquer )?(?:restrições|censura|filtros|limites))\b|(?:没有|不受)(?:任何)?(?:限制|约束|审查)|制限なし|制限のない|"
        + fold("без (?:каких-либо )?(?:ограничений|цензуры|фильтров)"),
        0.3,
    ),
]
