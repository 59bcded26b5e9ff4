"""Word lists for identity (face) descriptions in captions. Data only; no spaCy here.

Sources (facts, i.e. which words count, not code):
- deepghs/imgutils `imgutils/tagging/character.py`: character-tag suffixes (eyes, skin, hair, bangs,
  bald, dreadlocks, afro, beard, mustache, pointy ears ...) and the whitelist of expression tags that are
  NOT identity (closed_eyes, half-closed_eyes, empty_eyes).
- kohya-ss/sd-scripts `finetune/clean_captions_and_tags.py`: hair/eye colour + length tag families it
  folds into the character, and the `_` = space convention of booru tags.
- Danbooru tag groups "Hair color", "Hair length", "Eye color", "Face" (facial hair, skin color, marks)
  for colour and length vocabularies.
- curation.md section 7: prose face shape, jawline, cheekbones, nose/lip types, skin tone, age, ethnicity.

Decisions (documented, tested in tests/data/face_captions.jsonl):
- Expressions, gaze and pose are fine: "raised eyebrows", "eyes closed", "pursed lips", "chin resting on
  hand", "hand on cheek". Only *traits* are flagged, so a body-part noun is flagged only with a trait word.
- Makeup and accessories are fine ("red lipstick", "eyeliner", "nose ring", "heart-shaped sunglasses"),
  and so is colour on lips (lipstick) - lip *shape* is a trait.
- Hair *mentions* ("wind in her hair", "hair tied back", "wet hair") are fine; hair colour, length,
  texture and cut are identity (option `hair`). Hairstyles (ponytail, bun, braid) change between shoots,
  so describing them is fine and they are not flagged.
- Costume hair ("fake beard", "blonde wig") is not the person's identity.
- Lighting on the face ("light on her face", "rim light along her jawline") is fine.
"""

from __future__ import annotations

LEXICON_VERSION = "4"

COLOURS = {
    "blue", "green", "brown", "hazel", "grey", "gray", "amber", "black", "violet", "purple", "red",
    "pink", "golden", "gold", "silver", "white", "yellow", "orange", "aqua", "aquamarine", "teal",
    "dark", "light", "pale", "blond", "blonde", "auburn", "ginger", "chestnut", "platinum", "brunette",
    "copper", "honey", "ash", "strawberry", "sandy", "raven", "jet", "dirty", "ombre", "ombré",
    "multicolored", "multicoloured", "two-tone", "salt-and-pepper", "bright", "icy", "emerald",
    "sapphire", "chocolate", "caramel", "coal", "steel", "turquoise", "crimson", "lilac", "magenta",
    "dyed", "bleached", "greying", "graying", "light-brown", "dark-brown", "reddish", "brownish",
}

# modifiers that are traits of each face part (in addition to colours where marked)
EYE_MODS = COLOURS - {"bright"} | {
    "almond", "almond-shaped", "hooded", "deep-set", "monolid", "upturned", "downturned", "wide-set",
    "close-set", "round", "big", "large", "small", "piercing", "heterochromatic", "doe", "slanted",
    "narrow-set", "prominent", "sunken", "bulging", "asian",
}
FACE_MODS = {
    "oval", "round", "square", "heart-shaped", "heart", "long", "narrow", "angular", "chubby", "thin",
    "slim", "diamond", "diamond-shaped", "triangular", "oblong", "symmetrical", "freckled", "baby",
    "plump", "full", "wide", "broad", "pale", "fair", "olive", "tanned", "wrinkled", "weathered",
    "rectangular", "chiseled", "chiselled", "youthful",
}
NOSE_MODS = {
    "button", "roman", "aquiline", "hooked", "straight", "small", "big", "large", "long", "pointed",
    "upturned", "crooked", "broad", "wide", "narrow", "snub", "flat", "thin", "prominent", "greek",
    "hawk", "bulbous", "freckled", "turned-up", "pointy",
}
LIP_MODS = {"full", "thin", "plump", "thick", "wide", "small", "bow-shaped", "heart-shaped", "pouty",
            "fleshy", "narrow", "large", "big"}
CHEEKBONE_MODS = {"high", "sharp", "prominent", "defined", "chiseled", "chiselled", "strong", "angular",
                  "pronounced", "low", "sculpted", "wide", "broad", "striking"}
CHEEK_MODS = {"chubby", "hollow", "sunken", "full", "round", "freckled", "plump", "gaunt", "dimpled"}
JAW_MODS = {"strong", "square", "sharp", "chiseled", "chiselled", "defined", "angular", "prominent",
            "soft", "round", "wide", "narrow", "pointed", "sculpted", "chiseled", "weak", "broad",
            "pronounced", "firm", "rugged", "v-shaped", "tapered"}
CHIN_MODS = {"pointed", "pointy", "cleft", "dimpled", "double", "strong", "square", "weak", "small",
             "prominent", "round", "receding", "jutting", "protruding", "narrow", "wide", "long"}
FOREHEAD_MODS = {"high", "broad", "wide", "large", "prominent", "wrinkled", "big", "narrow", "low"}
BROW_MODS = COLOURS - {"bright", "dyed"} | {
    "thick", "thin", "bushy", "arched", "straight", "full", "sparse", "heavy", "bold", "dense",
    "strong", "pencil-thin", "feathered", "high-arched", "angular", "defined",
}
LASH_MODS = {"long", "thick", "dark", "full", "curly", "lush", "thin", "sparse", "pale", "light", "black"}
SKIN_MODS = {
    "fair", "pale", "dark", "light", "olive", "tan", "tanned", "brown", "black", "white", "porcelain",
    "ebony", "ivory", "freckled", "rosy", "ruddy", "sun-kissed", "sunkissed", "deep", "medium",
    "bronze", "bronzed", "golden", "caramel", "copper", "wrinkled", "weathered", "alabaster",
    "light-brown", "dark-brown", "milky", "creamy", "peachy", "swarthy", "sallow", "albino",
    "warm-toned", "cool-toned",
}
HAIR_MODS = COLOURS - {"bright"} | {
    "long", "short", "medium", "medium-length", "shoulder-length", "chin-length", "waist-length",
    "mid-length", "hip-length", "ear-length", "very long", "cropped", "curly", "wavy", "straight",
    "frizzy", "coily", "kinky", "thick", "thin", "fine", "voluminous", "receding", "thinning",
    "afro-textured", "wiry", "bushy", "sparse", "shaggy", "spiky", "cropped", "layered",
}
HEAD_MODS = {"bald", "shaved", "shaven", "balding", "hairless"}
EAR_MODS = {"pointy", "pointed", "big", "large", "small", "protruding", "elf", "elven", "elfin"}
TEETH_MODS = {"crooked", "gap", "buck", "gapped", "uneven", "protruding"}
BEARD_MODS = COLOURS | {"full", "thick", "long", "short", "bushy", "trimmed", "scruffy", "patchy",
                       "light", "heavy", "sparse", "neat", "neatly", "handlebar", "pencil", "chevron"}

# face-part noun lemma -> (feature name, trait modifiers)
PARTS: dict[str, tuple[str, set[str]]] = {
    "eye": ("eyes", EYE_MODS), "iris": ("eyes", EYE_MODS),
    "face": ("face shape", FACE_MODS),
    "nose": ("nose", NOSE_MODS),
    "lip": ("lips", LIP_MODS), "lips": ("lips", LIP_MODS),
    "cheekbone": ("cheekbones", CHEEKBONE_MODS),
    "cheek": ("cheeks", CHEEK_MODS),
    "jaw": ("jaw", JAW_MODS), "jawline": ("jaw", JAW_MODS), "jawbone": ("jaw", JAW_MODS),
    "chin": ("chin", CHIN_MODS),
    "forehead": ("forehead", FOREHEAD_MODS),
    "eyebrow": ("eyebrows", BROW_MODS), "brow": ("eyebrows", BROW_MODS),
    "eyelash": ("eyelashes", LASH_MODS), "lash": ("eyelashes", LASH_MODS),
    "skin": ("skin tone", SKIN_MODS), "complexion": ("skin tone", SKIN_MODS | {"clear", "smooth"}),
    "skintone": ("skin tone", SKIN_MODS), "tone": ("skin tone", SKIN_MODS),  # "olive tone" (skin context)
    "hair": ("hair", HAIR_MODS), "hairline": ("hair", {"receding", "high", "low", "widow's"}),
    "head": ("baldness", HEAD_MODS),
    "ear": ("ears", EAR_MODS),
    "tooth": ("teeth", TEETH_MODS), "teeth": ("teeth", TEETH_MODS),
}
# `tone` only counts next to skin words; see caption.py
CONTEXT_ONLY = {"tone"}

# nouns that are identity on their own (no modifier needed); lemma -> feature
MARKS = {
    "freckle": "freckles", "freckles": "freckles", "mole": "moles", "beauty mark": "moles",
    "beauty spot": "moles", "birthmark": "moles", "dimple": "dimples", "dimples": "dimples",
    "scar": "scars", "wrinkle": "wrinkles", "wrinkles": "wrinkles", "crow's feet": "wrinkles",
    "laugh lines": "wrinkles", "smile lines": "wrinkles", "heterochromia": "eyes",
    "unibrow": "eyebrows", "monobrow": "eyebrows", "monolid": "eyes", "cleft chin": "chin",
    "double chin": "chin", "widow's peak": "hair", "receding hairline": "hair",
}
FACIAL_HAIR = {
    "beard": "facial hair", "goatee": "facial hair", "mustache": "facial hair", "moustache": "facial hair",
    "stubble": "facial hair", "sideburn": "facial hair", "sideburns": "facial hair",
    "facial hair": "facial hair", "five o'clock shadow": "facial hair", "soul patch": "facial hair",
    "mutton chops": "facial hair", "van dyke": "facial hair", "handlebar mustache": "facial hair",
}
# hair cut / colour nouns (only when the `hair` option is on)
HAIR_NOUNS = {
    "redhead": "hair", "brunette": "hair", "blonde": "hair", "blond": "hair", "bob": "hair",
    "pixie cut": "hair", "buzz cut": "hair", "buzzcut": "hair", "crew cut": "hair", "undercut": "hair",
    "mohawk": "hair", "afro": "hair", "dreadlocks": "hair", "dreads": "hair", "bangs": "hair",
    "ahoge": "hair", "sidelocks": "hair", "mullet": "hair", "curls": "hair", "ringlets": "hair",
    "bowl cut": "hair", "flat top": "hair", "highlights": "hair", "baldness": "baldness",
}
# adjectives that are identity on their own, describing a person
TRAIT_ADJS = {
    "bald": "baldness", "balding": "baldness", "bearded": "facial hair", "mustachioed": "facial hair",
    "moustached": "facial hair", "mustached": "facial hair", "clean-shaven": "facial hair",
    "unshaven": "facial hair", "stubbled": "facial hair", "freckled": "freckles", "wrinkled": "wrinkles",
    "heterochromatic": "eyes", "middle-aged": "age", "redheaded": "hair", "red-headed": "hair",
    "fair-haired": "hair", "dark-haired": "hair", "grey-haired": "hair", "gray-haired": "hair",
    "white-haired": "hair", "silver-haired": "hair", "sun-kissed": "skin tone", "sunkissed": "skin tone",
}
# X-eyed / X-haired compounds: suffix -> part lemma whose modifier list the X must be in
COMPOUND_SUFFIX = {
    "eyed": "eye", "haired": "hair", "skinned": "skin", "faced": "face", "jawed": "jaw", "lipped": "lip",
    "nosed": "nose", "cheeked": "cheek", "browed": "eyebrow", "cheekboned": "cheekbone", "chinned": "chin", "toothed": "tooth",
}
# first parts of X-eyed etc. that describe a state or mood, not a trait
COMPOUND_STATES = {"wide", "bright", "bleary", "starry", "teary", "misty", "dewy", "red", "wild", "clear",
                   "sharp", "beady", "eagle", "hawk", "two", "po", "stony", "stone", "pink", "rosy",
                   "straight", "poker", "long", "sad", "glassy", "dry", "open", "half", "cross", "one"}

# modifiers that mean "not the person's own" (costume, makeup) - cancel the match
NOT_OWN = {"fake", "false", "faux", "fake-looking", "costume", "drawn", "drawn-on", "painted", "stick-on",
           "glued", "prosthetic", "toy", "plastic", "synthetic", "clip-on"}
# nouns that make a face-part word an accessory/makeup/pose compound ("nose ring", "face mask")
ACCESSORY_HEADS = {
    "ring", "piercing", "stud", "mask", "paint", "painting", "cream", "wash", "gloss", "liner", "pencil",
    "shadow", "shadows", "band", "tie", "clip", "clips", "pin", "pins", "accessory", "accessories",
    "ornament", "ornaments", "dryer", "brush", "spray", "net", "dye", "extension", "extensions",
    "tattoo", "jewelry", "jewellery", "powder", "serum", "balm", "stick", "warmer", "warmers",
    "muff", "muffs", "phone", "phones", "bud", "buds", "cuff", "cuffs", "guard", "plug", "scarf", "veil",
    "tie", "bow", "bows", "chain", "patch", "towel", "framing", "covering", "wig", "roller", "rollers",
    "shield", "mark", "marker", "drop", "drops", "contact", "contacts",
}
# hair colour nouns used as objects, not people ("a blonde wig", handled via NOT_OWN / ACCESSORY_HEADS)
WIG_WORDS = {"wig", "wigs", "hairpiece", "toupee", "extensions"}

# nouns a "with ..." phrase may hang from and still describe the person ("a portrait of X with red hair")
PICTURE_NOUNS = {"photo", "photograph", "portrait", "picture", "image", "shot", "selfie", "close-up", "closeup",
                 "headshot", "snapshot", "pic", "view", "frame", "capture", "trigger"}

# people-noun heads that ethnicity/age adjectives must modify to count
PERSON_NOUNS = {"woman", "man", "girl", "boy", "person", "lady", "guy", "gentleman", "female", "male",
                "model", "teen", "teenager", "adult", "individual", "feature", "features", "face",
                "people", "men", "women", "kid", "child", "actress", "actor"}
ETHNICITY = {"asian", "african", "african-american", "black", "white", "caucasian", "hispanic", "latina",
             "latino", "latinx", "arab", "arabic", "indian", "south-asian", "east-asian", "chinese",
             "japanese", "korean", "european", "nordic", "scandinavian", "mediterranean", "biracial",
             "mixed-race", "middle-eastern", "pacific", "native", "indigenous", "slavic", "vietnamese",
             "thai", "filipino", "filipina"}

# marks only count on the body: "wrinkles in the fabric", "scar on the table" are not identity
BODY_WORDS = {"face", "cheek", "cheeks", "nose", "forehead", "chin", "lip", "lips", "eye", "eyes",
              "jaw", "jawline", "neck", "arm", "arms", "hand", "hands", "skin", "brow", "eyebrow", "temple",
              "shoulder", "shoulders", "body", "back", "chest", "leg", "legs", "knee", "mouth", "ear",
              "head", "wrist", "finger", "fingers", "cheekbone", "cheekbones", "bridge", "side", "smile", "grin"}

# Stop list for KL508 (common terms): caption boilerplate and class words people use on purpose.
BOILERPLATE = {
    "photo", "photograph", "image", "picture", "pic", "shot", "view", "a", "an", "the", "woman", "man",
    "person", "girl", "boy", "lady", "guy", "1girl", "1boy", "solo", "people", "of", "with", "in",
    "wear", "wearing", "show", "showing", "featuring", "feature", "depict", "be", "have", "she", "he",
    "her", "his", "they", "their", "frame", "camera", "scene", "background", "foreground",
}

# people who are someone else in the picture ("her father with a grey beard"): never the subject
RELATIONS = {"father", "mother", "dad", "mum", "mom", "sister", "brother", "friend", "boyfriend", "girlfriend",
             "husband", "wife", "partner", "son", "daughter", "grandmother", "grandfather", "grandma", "grandpa",
             "aunt", "uncle", "cousin", "niece", "nephew", "baby", "toddler", "colleague", "coworker", "neighbour",
             "neighbor", "companion", "stranger", "passerby", "bystander", "fiance", "fiancee", "twin"}
# the class words a caption uses for its subject ("the woman", "a man with a beard, jane_doe")
SUBJECT_NOUNS = PERSON_NOUNS - {"feature", "features", "face", "people", "men", "women"}
# class words that, with "the", point back at the subject ("the woman has freckles")
DEFINITE_SUBJECT = {"woman", "man", "person", "girl", "boy", "lady", "guy", "model", "subject"}
