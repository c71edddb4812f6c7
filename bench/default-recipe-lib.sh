# Shared by bench/default-recipe.sh and bench/default-recipe-tune.sh (sourced; ROOT set, cwd = ROOT):
# the generated data set of a seed, which both scripts cache in the same folder, and the table cell
# of a result file.
DEFAULT_RECIPE_OUT="$ROOT/bench/out/default-recipe"

# default_recipe_data SEED: the 400 train / 100 val, 128 px shapes set of SEED (made once); prints its folder
default_recipe_data() {
  local data="$DEFAULT_RECIPE_OUT/shapes-$1"
  [ -f "$data/.complete" ] || { node dist/cli/smnas.js data synth --out "$data" --train 400 --val 100 --size 128 --seed "$1" >/dev/null 2>&1 && touch "$data/.complete"; }
  echo "$data"
}

# stats_cell FILE: "AP50 / AP / AP75 / AR100" of a trainer result (metrics.stats) or an evaluation (stats)
stats_cell() {
  node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const s = j.metrics?.stats ?? j.stats ?? j;
process.stdout.write([s.AP50, s.AP, s.AP75, s.AR100].map((x) => x.toFixed(3)).join(" / "));' "$1"
}
